//go:build !cgo || !dpdk

package dpdk

import (
	"errors"
	"strings"
	"testing"
)

func TestBuildWithoutDPDKExplainsHowToGetIt(t *testing.T) {
	err := Init(nil)
	if !errors.Is(err, ErrNotBuilt) || !strings.Contains(err.Error(), "-tags dpdk") {
		t.Fatalf("Init without the binding: %v", err)
	}
	if _, err := Probe("net_null0"); !errors.Is(err, ErrNotBuilt) {
		t.Fatalf("Probe without the binding: %v", err)
	}
	if Available() {
		t.Fatal("Available without the binding")
	}
}
