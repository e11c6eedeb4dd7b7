package entrance

import "testing"

// TestSendQueueOrder pushes and pops across buffer growth and wrap-around
// and checks the order, the limit and the release of the buffer.
func TestSendQueueOrder(t *testing.T) {
	cases := []struct {
		name  string
		limit int
		steps []int // positive: push that many; negative: pop that many
	}{
		{"fill to limit", 20, []int{20}},
		{"wrap before growth", 10, []int{6, -4, 8, -10}},
		{"grow while wrapped", 64, []int{8, -5, 5, 30, -38}},
		{"limit not a power of two", 13, []int{13, -7, 7, -13}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var q sendQueue
			q.init(tc.limit)
			pushed, popped := int64(0), int64(0)
			for _, step := range tc.steps {
				for ; step > 0; step-- {
					q.mu.Lock()
					ok := q.push(outgoing{frame: &Frame{TaskID: pushed}})
					q.mu.Unlock()
					if !ok {
						t.Fatalf("push %d rejected with %d queued; limit %d", pushed, q.count, tc.limit)
					}
					pushed++
				}
				for ; step < 0; step++ {
					out, ok := q.pop()
					if !ok || out.frame.TaskID != popped {
						t.Fatalf("pop %d: got %v, %v", popped, out.frame, ok)
					}
					popped++
				}
			}
			q.mu.Lock()
			full := q.count == tc.limit && !q.push(outgoing{})
			q.mu.Unlock()
			if q.count == tc.limit && !full {
				t.Errorf("push past the limit of %d accepted", tc.limit)
			}
			if len(q.buf) > tc.limit {
				t.Errorf("buffer of %d entries; limit %d", len(q.buf), tc.limit)
			}
			if !q.retire(true) || q.buf != nil || q.count != 0 {
				t.Errorf("retire kept %d entries in a buffer of %d", q.count, len(q.buf))
			}
		})
	}
}

// TestSendQueueRetireKeepsEntries checks that a lingering writer does not
// leave entries behind that arrived while it decided to exit.
func TestSendQueueRetireKeepsEntries(t *testing.T) {
	var q sendQueue
	q.init(4)
	q.mu.Lock()
	q.push(outgoing{frame: &Frame{}})
	q.running = true
	q.mu.Unlock()
	if q.retire(false) {
		t.Fatal("retire let the writer exit with an entry queued")
	}
	if _, ok := q.pop(); !ok {
		t.Fatal("entry lost")
	}
	if !q.retire(false) || q.running {
		t.Fatal("retire kept the writer of an empty queue")
	}
}
