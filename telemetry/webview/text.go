package webview

import "github.com/eventpipeline/eventpipeline/internal/safetext"

// visible returns s with every character that could hide or disguise text
// replaced by its Go escape (see safetext.Visible: newlines and tabs are
// kept if keepLines). The result is valid UTF-8 and valid in XML, so that
// it can go into an SVG document too. HTML escaping is done after it, by
// html/template or the SVG canvas.
func visible(s string, keepLines bool) string { return safetext.Visible(s, keepLines) }
