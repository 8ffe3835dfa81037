package runtime

import (
	"os"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/peergate/peergate/dataplane/fib"
	"github.com/peergate/peergate/dataplane/pipeline"
	tablesv1 "github.com/peergate/peergate/proto/tables/v1"
)

// The real pipeline on the static-NAT scenario: ARP answered, VXLAN
// decapsulated and NATed, filtered packets dropped, neighbours resolved
// with held packets, while the tables are swapped under the worker; after
// shutdown every mbuf is back in the pool.
func TestPipelineTrafficAndTableSwapsLeaveNoMbufBehind(t *testing.T) {
	needEAL(t)
	const dir = "../../testdata/pcap/peering-api-1-static-nat/"
	raw, err := os.ReadFile("../../testdata/compiled/peering-api-1-static-nat.json")
	if err != nil {
		t.Skipf("scenario tables not there: %v", err)
	}
	var tables tablesv1.Tables
	if err := protojson.Unmarshal(raw, &tables); err != nil {
		t.Fatal(err)
	}
	build := func() *fib.Snapshot {
		s, err := fib.Build(&tables, fib.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	var h fib.Holder
	h.Store(build())
	pl := pipeline.New(&h, pipeline.Config{})
	r := newRuntime(t, Config{Ports: []PortConfig{
		{ID: 0, Name: "fabric", Device: "net_pcap_plf,infinite_rx=1,rx_pcap=" + dir + "in-fabric.pcap"},
		{ID: 1, Name: "vpc2", Device: "net_pcap_plv,rx_pcap=" + dir + "in-vpc2.pcap"},
	}}, func(id int, a pipeline.Allocator) Processor { return pl.NewWorker(id, a) })
	base := r.MbufsInUse()
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		time.Sleep(20 * time.Millisecond)
		h.Store(build())
	}
	waitFor(t, "forwarded and dropped packets", func() bool {
		s, _ := r.Stats()
		return s.Total.TxPackets > 1000 && s.Total.Dropped > 100
	})
	r.Stop()
	c := pl.Counters()
	s, _ := r.Stats()
	t.Logf("worker %+v\ndrops %v\nevents %v", s.Total, c.DropsByName(), c.EventsByName())
	if got := r.MbufsInUse(); got != base {
		t.Fatalf("mbufs in use %d after pipeline traffic, drops and table swaps, baseline %d", got, base)
	}
}
