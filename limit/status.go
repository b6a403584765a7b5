package limit

import "time"

// Status is what a Rate still admits in its window, for the OpenAI-style
// x-ratelimit-* headers a caller with limits gets.
type Status struct {
	LimitRequests, RemainingRequests int
	ResetRequests                    time.Duration
	LimitTokens, RemainingTokens     int
	ResetTokens                      time.Duration
}

// Status reports the window at now. Reset is when the current minute ends,
// by which the window has let go of at least part of what it counts.
func (r *Rate) Status(now time.Time) Status {
	if r == nil {
		return Status{}
	}
	n := now.UnixNano()
	r.mu.Lock()
	defer r.mu.Unlock()
	var s Status
	if r.RPM > 0 {
		s.LimitRequests = r.RPM
		s.RemainingRequests = max(0, r.RPM-int(r.req.count(n)))
		s.ResetRequests = time.Duration(int64(time.Minute) - (n - r.req.start))
	}
	if r.TPM > 0 {
		s.LimitTokens = r.TPM
		s.RemainingTokens = max(0, r.TPM-int(r.tok.count(n)))
		s.ResetTokens = time.Duration(int64(time.Minute) - (n - r.tok.start))
	}
	return s
}
