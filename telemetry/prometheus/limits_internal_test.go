package prometheus

import (
	"context"
	"log/slog"
	"net"
	"testing"
	"time"
)

// TestServerLimits checks the limits of the metrics server: the documented
// defaults for a zero Config, and the configured values otherwise.
func TestServerLimits(t *testing.T) {
	tests := []struct {
		name                      string
		cfg                       Config
		readHeader, read, write   time.Duration
		idle                      time.Duration
		maxHeaderBytes, maxScrape int
	}{
		{"defaults", Config{}, 10 * time.Second, 30 * time.Second, 30 * time.Second, 2 * time.Minute, 16 << 10, 8},
		{"configured", Config{ReadHeaderTimeout: time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: 3 * time.Second,
			IdleTimeout: 4 * time.Second, MaxHeaderBytes: 1000, MaxConcurrentScrapes: 2},
			time.Second, 2 * time.Second, 3 * time.Second, 4 * time.Second, 1000, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			tc.cfg.Listener = ln
			tc.cfg.Logger = slog.New(slog.DiscardHandler)
			p, err := NewPublisher(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close(context.Background())
			s := p.srv
			if s.ReadHeaderTimeout != tc.readHeader || s.ReadTimeout != tc.read || s.WriteTimeout != tc.write ||
				s.IdleTimeout != tc.idle || s.MaxHeaderBytes != tc.maxHeaderBytes {
				t.Errorf("got server limits read header %v, read %v, write %v, idle %v, header bytes %d; want %v, %v, %v, %v, %d",
					s.ReadHeaderTimeout, s.ReadTimeout, s.WriteTimeout, s.IdleTimeout, s.MaxHeaderBytes,
					tc.readHeader, tc.read, tc.write, tc.idle, tc.maxHeaderBytes)
			}
			if p.cfg.MaxConcurrentScrapes != tc.maxScrape {
				t.Errorf("got MaxConcurrentScrapes %d, want %d", p.cfg.MaxConcurrentScrapes, tc.maxScrape)
			}
		})
	}
	if DefaultReadHeaderTimeout != 10*time.Second || DefaultReadTimeout != 30*time.Second || DefaultWriteTimeout != 30*time.Second ||
		DefaultIdleTimeout != 2*time.Minute || DefaultMaxHeaderBytes != 16<<10 || DefaultMaxConcurrentScrapes != 8 {
		t.Error("the documented defaults changed")
	}
}
