package sqlitestore

import (
	"testing"

	"github.com/goentrance/entrance"
)

// FuzzDecodeLogBatch checks that decoding any payload either fails or
// returns lines within the requested range, and that an encoded batch
// decodes to the lines it was made of.
func FuzzDecodeLogBatch(f *testing.F) {
	f.Add([]byte{}, "a\nb")
	f.Add([]byte{0, 1, 'x', 2, 0}, "")
	f.Add([]byte{0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, "line")
	f.Fuzz(func(t *testing.T, payload []byte, text string) {
		lines, err := decodeLogBatch(nil, payload, 5, 9, 6, -1)
		if err == nil {
			for _, l := range lines {
				if l.Number < 6 || l.Number >= 9 {
					t.Fatalf("line %d outside [6, 9)", l.Number)
				}
			}
		}

		in := []entrance.LogLine{
			{Number: 1, Level: entrance.LevelWarn, Text: text},
			{Number: 2, Level: entrance.LevelError, Text: ""},
		}
		out, err := decodeLogBatch(nil, encodeLogBatch(nil, in), 1, 3, 1, -1)
		if err != nil {
			t.Fatalf("decode an encoded batch: %v", err)
		}
		if len(out) != 2 || out[0] != in[0] || out[1] != in[1] {
			t.Fatalf("round trip: got %+v, want %+v", out, in)
		}
	})
}
