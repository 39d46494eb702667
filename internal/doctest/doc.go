// Package doctest holds the test that keeps the documentation honest: every
// Go code block in README.md, CONTRIBUTING.md and docs/*.md must compile and
// pass go vet, relative links must point to files in the repository, the
// documents and the comments of every Go file must speak of this project
// and not refer to files outside the repository, and README.md must stay
// under about 200 lines.
//
// A block that imports a module of contrib/ is built in that module, which
// has its dependencies; the others in this one.
//
// A block that is a fragment rather than a whole program is skipped only
// when the line before its opening fence is a marker that gives a reason:
//
//	<!-- doctest:skip the reason, in words -->
//
// Run it with
//
//	go test ./internal/doctest
package doctest
