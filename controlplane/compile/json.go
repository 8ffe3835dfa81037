package compile

import (
	"bytes"
	"encoding/json"
	"fmt"

	"google.golang.org/protobuf/encoding/protojson"

	tablesv1 "github.com/peergate/peergate/proto/tables/v1"
)

// JSON renders t as indented protojson with stable whitespace (protojson
// alone varies its spacing between builds on purpose), for golden files
// and `gwctl compile -o json`.
func JSON(t *tablesv1.Tables) ([]byte, error) {
	raw, err := protojson.Marshal(t)
	if err != nil {
		return nil, fmt.Errorf("compile: marshal tables: %w", err)
	}
	var compact, out bytes.Buffer
	if err := json.Compact(&compact, raw); err != nil {
		return nil, fmt.Errorf("compile: compact tables JSON: %w", err)
	}
	if err := json.Indent(&out, compact.Bytes(), "", "  "); err != nil {
		return nil, fmt.Errorf("compile: indent tables JSON: %w", err)
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}
