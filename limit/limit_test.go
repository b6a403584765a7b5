package limit

import (
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 31, 23, 59, 0, 0, time.UTC)

func TestRPMWindowSlides(t *testing.T) {
	r := NewRate(3, 0)
	for i := 0; i < 3; i++ {
		if ok, _ := r.Allow(t0.Add(time.Duration(i)*time.Second), 0); !ok {
			t.Fatalf("request %d within the limit was refused", i+1)
		}
	}
	ok, wait := r.Allow(t0.Add(10*time.Second), 0)
	if ok || wait <= 0 || wait > time.Minute {
		t.Fatalf("the 4th request in a minute must wait (got ok=%v wait=%s)", ok, wait)
	}
	// Half a minute into the next window, half of the old one still counts.
	if ok, _ := r.Allow(t0.Add(90*time.Second), 0); !ok {
		t.Fatal("with 1.5 of 3 counted, one more request fits")
	}
	if ok, _ := r.Allow(t0.Add(3*time.Minute), 0); !ok {
		t.Fatal("after two quiet minutes the window is empty")
	}
}

func TestRetryAfterIsWhenTheWindowFrees(t *testing.T) {
	r := NewRate(1, 0)
	r.Allow(t0, 0)
	_, wait := r.Allow(t0.Add(30*time.Second), 0)
	// The one request sits in the current minute (t0 is at :00 of a
	// minute): it stops counting fully at the next minute and fades over it.
	if ok, _ := r.Allow(t0.Add(30*time.Second+wait), 0); !ok {
		t.Fatalf("Retry-After %s was too short", wait)
	}
}

func TestTPMReservesAndSettles(t *testing.T) {
	r := NewRate(0, 1000)
	if ok, _ := r.Allow(t0, 800); !ok {
		t.Fatal("first request fits")
	}
	if ok, _ := r.Allow(t0, 300); ok {
		t.Fatal("800 reserved + 300 is over 1000 tokens per minute")
	}
	r.Settle(t0, 800, 100) // it really used 100
	if ok, _ := r.Allow(t0, 300); !ok {
		t.Fatal("after settling at 100 used, 300 more fit")
	}
	big := NewRate(0, 1000)
	if ok, _ := big.Allow(t0, 5000); !ok {
		t.Fatal("a request larger than the whole TPM may still run alone")
	}
}

func TestBudgetPeriodsRollOver(t *testing.T) {
	cases := []struct {
		period string
		next   time.Time
		rolls  bool
	}{
		{Daily, t0.Add(time.Minute), true},        // midnight
		{Daily, t0.Add(30 * time.Second), false},  // same day
		{Monthly, t0.Add(time.Minute), true},      // Feb 1st
		{Monthly, t0.Add(-24 * time.Hour), false}, // Jan 30th
		{Total, t0.Add(400 * 24 * time.Hour), false},
	}
	for _, tc := range cases {
		t.Run(tc.period+"/"+tc.next.Format(time.RFC3339), func(t *testing.T) {
			b := NewBudget(1, tc.period)
			if !b.Reserve(t0, 0.9) {
				t.Fatal("0.9 of 1 fits")
			}
			b.Settle(t0, 0.9, 0.9)
			got := b.Reserve(tc.next, 0.5)
			if got != tc.rolls {
				t.Fatalf("0.5 more at %s: fits=%v, want %v", tc.next, got, tc.rolls)
			}
		})
	}
}

func TestConcurrentReservationsNeverOverspend(t *testing.T) {
	b := NewBudget(0.01, Total)
	const perRequest = 0.0015
	var wg sync.WaitGroup
	var mu sync.Mutex
	admitted := 0
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if b.Reserve(t0, perRequest) {
				mu.Lock()
				admitted++
				mu.Unlock()
				b.Settle(t0, perRequest, perRequest)
			}
		}()
	}
	wg.Wait()
	if spent := b.Spent(t0); spent > 0.01+perRequest || admitted != 6 {
		t.Fatalf("spent %.4f over %d requests; want 6 requests and at most one request over the budget", spent, admitted)
	}
}
