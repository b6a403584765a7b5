package limit

import (
	"fmt"
	"time"
)

// Limit is one cap a request must pass: a rate, a budget, or both, under a
// name the refusal can give the caller ("token app", "model gpt-4o").
type Limit struct {
	Name   string
	Rate   *Rate   // nil: no RPM/TPM cap
	Budget *Budget // nil: no budget
}

// Refusal says which limit refused a request and when to come back.
type Refusal struct {
	Limit      string
	Budget     bool          // the budget refused (else the rate)
	RetryAfter time.Duration // for a rate; zero for a budget
	Amount     float64       // the budget's amount and period, for the message
	Period     string
}

func (r *Refusal) Error() string {
	if r.Budget {
		return fmt.Sprintf("%s has spent its %s budget of $%.2f", r.Limit, r.Period, r.Amount)
	}
	return fmt.Sprintf("%s is over its requests or tokens per minute; retry in %s", r.Limit, r.RetryAfter)
}

// Reservation is what one request holds of every limit it passed: each
// is settled against exactly what it reserved, once.
type Reservation struct {
	at     time.Time
	tokens int
	cost   float64
	rates  []*Rate
	bufR   [4]*Rate
	budget []*Budget
	bufB   [2]*Budget
}

// Reserve checks every limit for one request expected to use tokens and
// cost, and takes from all of them or from none: a request one limit
// refuses is charged to no other. Negative estimates count as zero.
func Reserve(now time.Time, tokens int, cost float64, limits ...Limit) (*Reservation, *Refusal) {
	res := &Reservation{at: now, tokens: max(tokens, 0), cost: max(cost, 0)}
	res.rates, res.budget = res.bufR[:0], res.bufB[:0]
	if ref := res.Add(limits...); ref != nil {
		return nil, ref
	}
	return res, nil
}

// Add takes the request's reservation from more limits (a fallback
// model's, when the request moves to it), all or none; on a refusal the
// reservation keeps what it held before.
func (res *Reservation) Add(limits ...Limit) *Refusal {
	nr, nb := len(res.rates), len(res.budget)
	for _, l := range limits {
		if l.Rate != nil && (l.Rate.RPM > 0 || l.Rate.TPM > 0) {
			if ok, wait := l.Rate.Allow(res.at, res.tokens); !ok {
				res.undo(nr, nb)
				return &Refusal{Limit: l.Name, RetryAfter: wait}
			}
			res.rates = append(res.rates, l.Rate)
		}
		if l.Budget != nil {
			if !l.Budget.Reserve(res.at, res.cost) {
				res.undo(nr, nb)
				return &Refusal{Limit: l.Name, Budget: true, Amount: l.Budget.Amount, Period: l.Budget.Period}
			}
			res.budget = append(res.budget, l.Budget)
		}
	}
	return nil
}

// undo gives back what was taken after the first nr rates and nb budgets.
func (res *Reservation) undo(nr, nb int) {
	for _, r := range res.rates[nr:] {
		r.release(res.at, res.tokens)
	}
	for _, b := range res.budget[nb:] {
		b.Settle(res.at, res.cost, 0)
	}
	res.rates, res.budget = res.rates[:nr], res.budget[:nb]
}

// Settle books what the request really used against every limit it
// reserved, replacing exactly the reservation. Call it once.
func (res *Reservation) Settle(now time.Time, tokens int, cost float64) {
	if res == nil {
		return
	}
	for _, r := range res.rates {
		r.settleAt(res.at, now, res.tokens, max(tokens, 0))
	}
	for _, b := range res.budget {
		b.Settle(now, res.cost, max(cost, 0))
	}
	res.rates, res.budget = nil, nil
}
