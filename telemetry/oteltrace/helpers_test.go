package oteltrace_test

import (
	"net"
	"strings"
)

func stringsReader(s string) *strings.Reader { return strings.NewReader(s) }

func splitHostPort(a string) (string, string, error) { return net.SplitHostPort(a) }
