package safetext

import (
	"net/url"
	"strings"
)

// redacted replaces a secret in a URL shown by [URL] and [URLString]: the
// string that url.URL.Redacted puts in place of a password.
const redacted = "xxxxx"

// URL returns u as a string fit for a log line or an error: the password
// of its userinfo, the value of each query parameter (a parameter without
// "=", the whole of it) and its fragment are replaced by "xxxxx", since a
// token or API key may hide in any of them; the scheme, host, path and
// parameter names are kept. So
// https://u:pw@host/p?api_key=s3cret&x#frag is shown as
// https://u:xxxxx@host/p?api_key=xxxxx&xxxxx#xxxxx. A nil u is "".
func URL(u *url.URL) string {
	if u == nil {
		return ""
	}
	if _, has := u.User.Password(); !has && u.RawQuery == "" && u.Fragment == "" && !u.ForceQuery {
		return u.String()
	}
	c := *u
	if _, has := c.User.Password(); has {
		c.User = url.UserPassword(c.User.Username(), redacted)
	}
	c.RawQuery = redactQuery(c.RawQuery)
	if c.Fragment != "" {
		c.Fragment, c.RawFragment = redacted, ""
	}
	return c.String()
}

// redactQuery returns the raw query q with the value of each parameter
// replaced, and each parameter without "=" replaced whole.
func redactQuery(q string) string {
	if q == "" {
		return ""
	}
	var b strings.Builder
	for i, part := range strings.Split(q, "&") {
		if i > 0 {
			b.WriteByte('&')
		}
		switch name, value, hasValue := strings.Cut(part, "="); {
		case part == "":
		case !hasValue:
			b.WriteString(redacted)
		case value == "":
			b.WriteString(name + "=")
		default:
			b.WriteString(name + "=" + redacted)
		}
	}
	return b.String()
}

// URLString returns s, a URL as the user gave it, as [URL] shows it. If s
// does not parse, it shows what comes before its first '?' or '#' and
// replaces the rest, or, if that part holds an '@' (perhaps a password),
// says only that the URL is not valid.
func URLString(s string) string {
	if u, err := url.Parse(s); err == nil {
		return URL(u)
	}
	head, rest := s, ""
	if i := strings.IndexAny(s, "?#"); i >= 0 {
		head, rest = s[:i], s[i:i+1]+redacted
	}
	if strings.Contains(head, "@") {
		return "(invalid URL with credentials)"
	}
	return head + rest
}
