package limit

import (
	"testing"
	"time"
)

func TestReserveAllOrNone(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 30, 0, time.UTC)
	model, token := NewRate(10, 1000), NewRate(1, 0)
	budget := NewBudget(1, Daily)
	if _, ref := Reserve(now, 100, 0.1, Limit{Name: "token t", Rate: token, Budget: budget}, Limit{Name: "model m", Rate: model}); ref != nil {
		t.Fatal(ref)
	}
	_, ref := Reserve(now, 100, 0.1, Limit{Name: "token t", Rate: token, Budget: budget}, Limit{Name: "model m", Rate: model})
	if ref == nil || ref.Limit != "token t" {
		t.Fatalf("refusal %v, want the token's", ref)
	}
	// The model is refused last: the token and budget it passed get their share back.
	full := NewRate(1, 0)
	full.Allow(now, 0)
	other := NewRate(1, 0)
	if _, ref := Reserve(now, 100, 0.5, Limit{Name: "token u", Rate: other, Budget: budget}, Limit{Name: "model full", Rate: full}); ref == nil {
		t.Fatal("want a refusal")
	}
	if ok, _ := other.Allow(now, 0); !ok {
		t.Fatal("a request refused by the model charged the token's RPM")
	}
	if !budget.Reserve(now, 0.85) {
		t.Fatal("a request refused by the model kept its budget reservation")
	}
}

// Settling corrects the minute the reservation was made in, exactly, and
// never takes a window below zero.
func TestSettleAgainstTheReservation(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 50, 0, time.UTC)
	r := NewRate(0, 2000)
	res, ref := Reserve(start, 900, 0, Limit{Name: "m", Rate: r})
	if ref != nil {
		t.Fatal(ref)
	}
	later := start.Add(20 * time.Second) // the next minute
	r.Allow(later, 500)
	res.Settle(later, 10, 0)
	r.mu.Lock()
	cur, prev := r.tok.cur, r.tok.prev
	r.mu.Unlock()
	if cur != 500 || prev != 10 {
		t.Fatalf("after settling: this minute %d (want the other request's 500), last minute %d (want 10)", cur, prev)
	}
	res2, _ := Reserve(later, -5000, -1, Limit{Name: "m", Rate: r})
	res2.Settle(later, 0, 0)
	r.mu.Lock()
	cur = r.tok.cur
	r.mu.Unlock()
	if cur != 500 {
		t.Fatalf("a negative estimate changed the window: %d", cur)
	}
}
