package elasticsearch

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync/atomic"

	"github.com/elastic/elastic-transport-go/v8/elastictransport"
	"github.com/elastic/elastic-transport-go/v8/elastictransport/version"
)

// compatibilityEnv is the environment variable of the official client
// that turns on its REST compatibility mode: "true" makes the requests ask
// for the Elasticsearch 8 API with vendored media types.
const compatibilityEnv = "ELASTIC_CLIENT_APIVERSIONING"

// Media types of the compatibility mode.
const (
	compatJSON   = "application/vnd.elasticsearch+json;compatible-with=8"
	compatNDJSON = "application/vnd.elasticsearch+x-ndjson;compatible-with=8"
)

// userAgent is sent with every request, in the form the official client
// uses.
var userAgent = "elastic-transport-go/" + version.Transport + " (" + runtime.GOOS + " " + runtime.GOARCH + "; Go " +
	strings.TrimPrefix(runtime.Version(), "go") + ") eventpipeline"

// errNotElasticsearch is the error of a request whose successful reply
// does not come from Elasticsearch.
var errNotElasticsearch = errors.New("the server is not Elasticsearch: its reply lacks the header X-Elastic-Product: Elasticsearch")

// client sends the requests of a Publisher through the official transport
// (elastictransport: node selection, authentication) and does what the
// go-elasticsearch client package adds to it: the compatibility mode and
// the product check. It compiles neither that package and its typed API
// (about 860 packages) nor the esapi request types (565 files, a quarter of
// the command's first build, for two requests); it has the Perform method
// of esapi.Transport.
type client struct {
	tp      *elastictransport.Client
	compat  bool
	genuine atomic.Bool // a successful reply had the product header
}

// newRequest returns a request of method to path (with query, if not nil)
// carrying body as contentType, bound to ctx. The transport adds the
// scheme, host and credentials.
func newRequest(ctx context.Context, method, path string, query url.Values, body []byte, contentType string) (*http.Request, error) {
	u := &url.URL{Path: path, RawQuery: query.Encode()}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", contentType)
	return req, nil
}

// Perform sends req. A successful reply without the product header of
// Elasticsearch, until one had it, is an error wrapping
// errNotElasticsearch.
func (c *client) Perform(req *http.Request) (*http.Response, error) {
	if c.compat {
		if req.Body != nil && req.Body != http.NoBody {
			if strings.Contains(req.Header.Get("Content-Type"), "ndjson") {
				req.Header.Set("Content-Type", compatNDJSON)
			} else {
				req.Header.Set("Content-Type", compatJSON)
			}
		}
		req.Header.Set("Accept", compatJSON)
	}
	res, err := c.tp.Perform(req)
	if err != nil {
		return nil, err
	}
	if res.StatusCode >= 200 && res.StatusCode < 300 && !c.genuine.Load() {
		if res.Header.Get("X-Elastic-Product") != "Elasticsearch" {
			_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
			res.Body.Close()
			return nil, errNotElasticsearch
		}
		c.genuine.Store(true)
	}
	return res, nil
}
