package mockprovider

import (
	"math"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tidwall/gjson"
)

// Limits makes the provider enforce a rate limit on every key, each key on
// its own, the way OpenAI and Anthropic do: a bucket of RPM requests and
// one of TPM tokens that refill continuously over Window. Every answer
// carries the provider's rate-limit headers (remaining, limit, and when the
// bucket is full again), and a call that does not fit is refused with a 429
// as the real provider sends it.
type Limits struct {
	RPM, TPM int
	// Window is the time a bucket takes to refill from empty; default a
	// minute. A shorter one compresses time for the load harness: the
	// headers stay consistent with it, so a client pacing on them needs no
	// configuration.
	Window time.Duration
	// Style is the headers sent: "openai" (default; x-ratelimit-*, resets
	// as durations such as "6ms" or "1m30s") or "anthropic"
	// (anthropic-ratelimit-*, resets as RFC 3339 times).
	Style string
	// Now is the clock; nil means time.Now.
	Now func() time.Time `json:"-"`
}

// Tail makes a share of calls slow: a latency tail, for hedging. Slow calls
// are spread evenly (call i is slow when floor(i·Share) steps up), so a run
// is reproducible.
type Tail struct {
	Share float64
	Delay time.Duration
}

type bucket struct {
	level float64
	at    time.Time
}

func (b *bucket) fill(now time.Time, limit float64, window time.Duration) {
	if b.at.IsZero() {
		b.level, b.at = limit, now
		return
	}
	if d := now.Sub(b.at); d > 0 {
		b.level = math.Min(limit, b.level+limit*float64(d)/float64(window))
		b.at = now
	}
}

// untilFull is how long the bucket takes to be full again.
func (b *bucket) untilFull(limit float64, window time.Duration) time.Duration {
	return time.Duration((limit - b.level) / limit * float64(window))
}

// untilRoom is how long until n fit.
func (b *bucket) untilRoom(n, limit float64, window time.Duration) time.Duration {
	return time.Duration(math.Ceil((math.Min(n, limit) - b.level) / limit * float64(window)))
}

// keyLimits is one key's buckets.
type keyLimits struct {
	mu       sync.Mutex
	req, tok bucket
	refused  int64
	firstNo  time.Time
}

// limiter enforces Options.Limits.
type limiter struct {
	opts    Limits
	keys    sync.Map // key → *keyLimits
	refused atomic.Int64
}

func (l *limiter) now() time.Time {
	if l.opts.Now != nil {
		return l.opts.Now()
	}
	return time.Now()
}

func (l *limiter) window() time.Duration {
	if l.opts.Window > 0 {
		return l.opts.Window
	}
	return time.Minute
}

func (l *limiter) key(k string) *keyLimits {
	if v, ok := l.keys.Load(k); ok {
		return v.(*keyLimits)
	}
	v, _ := l.keys.LoadOrStore(k, &keyLimits{})
	return v.(*keyLimits)
}

// take admits a call of tokens for key and sets the rate-limit headers on
// w; it writes the 429 itself and returns false when the call does not fit.
func (l *limiter) take(w http.ResponseWriter, key string, tokens int) bool {
	now := l.now()
	win := l.window()
	rpm, tpm := float64(l.opts.RPM), float64(l.opts.TPM)
	k := l.key(key)
	k.mu.Lock()
	if rpm > 0 {
		k.req.fill(now, rpm, win)
	}
	if tpm > 0 {
		k.tok.fill(now, tpm, win)
	}
	var wait time.Duration
	what := ""
	if rpm > 0 && k.req.level < 1 {
		wait, what = k.req.untilRoom(1, rpm, win), "requests"
	} else if tpm > 0 && k.tok.level < math.Min(float64(tokens), tpm) {
		wait, what = k.tok.untilRoom(float64(tokens), tpm, win), "tokens"
	}
	ok := what == ""
	if ok {
		if rpm > 0 {
			k.req.level--
		}
		if tpm > 0 {
			k.tok.level -= float64(tokens)
		}
	} else {
		k.refused++
		if k.firstNo.IsZero() {
			k.firstNo = now
		}
	}
	reqLeft, tokLeft := k.req.level, k.tok.level
	reqFull, tokFull := k.req.untilFull(rpm, win), k.tok.untilFull(tpm, win)
	k.mu.Unlock()

	h := w.Header()
	setLimit := func(name string, limit, left float64, full time.Duration) {
		if limit <= 0 {
			return
		}
		rem := strconv.Itoa(int(math.Max(math.Floor(left), 0)))
		lim := strconv.Itoa(int(limit))
		if l.opts.Style == "anthropic" {
			p := "Anthropic-Ratelimit-" + name + "-"
			h[p+"Limit"] = []string{lim}
			h[p+"Remaining"] = []string{rem}
			h[p+"Reset"] = []string{now.Add(full).UTC().Format(time.RFC3339Nano)}
			return
		}
		h["X-Ratelimit-Limit-"+name] = []string{lim}
		h["X-Ratelimit-Remaining-"+name] = []string{rem}
		h["X-Ratelimit-Reset-"+name] = []string{openAIDuration(full)}
	}
	setLimit("Requests", rpm, reqLeft, reqFull)
	setLimit("Tokens", tpm, tokLeft, tokFull)
	if ok {
		return true
	}
	l.refused.Add(1)
	h["Retry-After"] = []string{strconv.Itoa(int(math.Ceil(max(wait, time.Second).Seconds())))}
	h["Retry-After-Ms"] = []string{strconv.FormatInt(max(wait.Milliseconds(), 1), 10)}
	h["Content-Type"] = jsonHeader["Content-Type"]
	w.WriteHeader(http.StatusTooManyRequests)
	limit := rpm
	unit := "requests per min (RPM)"
	if what == "tokens" {
		limit, unit = tpm, "tokens per min (TPM)"
	}
	w.Write(openAIError("Rate limit reached for default-model in organization org-mock on "+unit+": Limit "+
		strconv.Itoa(int(limit))+". Please try again in "+openAIDuration(wait)+
		". Visit https://platform.openai.com/account/rate-limits to learn more.", what, "rate_limit_exceeded"))
	return false
}

// openAIDuration writes a duration as OpenAI's headers do: "6ms", "20s",
// "1m30s" (Go's form, rounded to the millisecond).
func openAIDuration(d time.Duration) string {
	if d < time.Millisecond {
		return "0s"
	}
	return d.Round(time.Millisecond).String()
}

// callTokens is what a call counts against TPM: the prompt and the
// completion it will produce.
func (p *Provider) callTokens(rt route, req gjson.Result) int {
	switch rt {
	case routeChat:
		prompt, _ := chatPrompt(req.Get("messages"))
		return prompt + p.words
	case routeEmbeddings:
		n := 0
		embeddingInputs(req.Get("input"), func(_ string, t int) { n += t })
		return n
	}
	return 0
}

// pace applies Options.Limits and Options.Tail to a call that is about to
// be answered; false means it was answered (refused) already, or the caller
// went away during a slow call.
func (p *Provider) pace(w http.ResponseWriter, r *http.Request, key string, rt route, req gjson.Result) bool {
	if rt == routeModels {
		return true
	}
	if l := p.limiter; l != nil && !l.take(w, key, p.callTokens(rt, req)) {
		return false
	}
	if t := p.opts.Tail; t != nil && t.Share > 0 {
		i := p.tailSeq.Add(1)
		if math.Floor(float64(i)*t.Share) != math.Floor(float64(i-1)*t.Share) {
			if !sleep(r.Context(), t.Delay) {
				p.canceled.Add(1)
				return false
			}
		}
	}
	return true
}

// Refused is how many calls the rate limit refused, over every key.
func (p *Provider) Refused() int {
	if p.limiter == nil {
		return 0
	}
	return int(p.limiter.refused.Load())
}

// FirstRefusal is when the rate limit first refused key; zero if never.
func (p *Provider) FirstRefusal(key string) time.Time {
	if p.limiter == nil {
		return time.Time{}
	}
	k := p.limiter.key(key)
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.firstNo
}
