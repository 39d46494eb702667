// Package esfake is a strict stand-in for an Elasticsearch 8 node, for
// tests of code that talks to Elasticsearch, such as the publisher of
// package telemetry/elasticsearch. It serves over real HTTP on 127.0.0.1
// ([Server].URL), or in memory through [Server.RoundTripper], which answers
// in the calling goroutine so that a client can run in a testing/synctest
// bubble. It answers what the official client checks (the
// X-Elastic-Product header, GET / with an 8.x version), validates _bulk
// requests line by line (content type, action and source lines, trailing
// newline, JSON), validates _index_template requests, checks documents
// against the mappings of the matching template, and records what was
// indexed so that tests can assert the exact documents and indices.
//
// Faults can be injected: per-document rejections (a mapping error, 429),
// whole requests answered with an error status and a Retry-After
// ([Server.FailNext]), and the node going down (connections refused) and
// coming back ([Server.Down], [Server.Up]). A request body longer than
// [Options].MaxContentLength is answered 413 Request Entity Too Large.
//
// A request that breaks the protocol gets the error Elasticsearch would
// send, and is also recorded in [Server.Violations], so a test can check
// that its client never sent one.
package esfake
