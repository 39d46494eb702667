package elasticsearch

import "github.com/elastic/go-elasticsearch/v8/esapi"

// Transport returns the transport p sends its requests with, for tests
// that check what p indexed with requests of their own.
func Transport(p *Publisher) esapi.Transport { return p.client }
