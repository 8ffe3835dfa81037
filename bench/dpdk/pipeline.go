package main

import (
	"fmt"
	"os"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/peergate/peergate/dataplane/fib"
	"github.com/peergate/peergate/dataplane/pipeline"
	"github.com/peergate/peergate/dataplane/runtime"
	tablesv1 "github.com/peergate/peergate/proto/tables/v1"
)

type pipelineRun struct {
	tables        string
	in, out       uint16
	stream, prime string
}

// pipelineProcessor builds the real pipeline from compiled tables (the JSON
// of `gwctl compile --dump`, as in testdata/compiled).
func pipelineProcessor(path string) (runtime.NewProcessor, *pipeline.Pipeline, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	var t tablesv1.Tables
	if err := protojson.Unmarshal(raw, &t); err != nil {
		return nil, nil, fmt.Errorf("tables %s: %w", path, err)
	}
	snap, err := fib.Build(&t, fib.Options{})
	if err != nil {
		return nil, nil, fmt.Errorf("tables %s: %w", path, err)
	}
	var h fib.Holder
	h.Store(snap)
	pl := pipeline.New(&h, pipeline.Config{})
	return func(id int, a pipeline.Allocator) runtime.Processor { return pl.NewWorker(id, a) }, pl, nil
}
