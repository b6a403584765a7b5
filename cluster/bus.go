package cluster

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/keygate/keygate/pool"
	"github.com/redis/go-redis/v9"
)

// message is what replicas tell each other on the events channel.
type message struct {
	From   string       `json:"from"`
	Type   string       `json:"type"`           // state, reload, lease
	What   string       `json:"what,omitempty"` // reload: models|tokens|users|all; lease: the pool key id
	Change *pool.Change `json:"change,omitempty"`
}

// setState stores a key state change in the states hash if it is newer
// than the one there, and only then publishes it: replicas that changed the
// same state during an outage agree on the newest once they are back.
// The value is "<microseconds>|<json>".
var setState = redis.NewScript(`
local old = redis.call('HGET', KEYS[1], ARGV[1])
if old then
  local t = tonumber(string.match(old, '^(%d+)|'))
  if t and t >= tonumber(ARGV[2]) then return 0 end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. '|' .. ARGV[3])
redis.call('PUBLISH', ARGV[4], ARGV[5])
return 1
`)

func (c *Cluster) statesKey() string { return c.prefix + "keystates" }

func fieldOf(ch pool.Change) stateKey {
	kind := "st"
	if ch.Kind == pool.ChangeOperatorDisabled || ch.Kind == pool.ChangeOperatorEnabled {
		kind = "op"
	}
	return stateKey{ch.KeyID, ch.Model, kind}
}

func (k stateKey) field() string { return k.key + "\x00" + k.model + "\x00" + k.kind }

// publishChanges carries the pool's own changes to Redis, or keeps them for
// the resync while Redis is down.
func (c *Cluster) publishChanges(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case ch := <-c.changes:
			c.share(ctx, ch)
		}
		if c.overflow.Swap(false) {
			for _, ch := range c.pool.ChangesOf() {
				c.share(ctx, ch)
			}
		}
	}
}

// share stores and publishes one change made here. A cooldown this replica
// started gives it the probe lease: it probes first when the cooldown ends.
func (c *Cluster) share(ctx context.Context, ch pool.Change) {
	sk := fieldOf(ch)
	if !c.up.Load() {
		c.keepPending(sk, ch)
		return
	}
	if err := c.store(ctx, ch); err != nil {
		c.keepPending(sk, ch)
		c.markDown(err)
		return
	}
	if cooling(ch) {
		ttl := ch.State.BlockedUntil.Sub(c.clock.Now()) + probeGrace
		sctx, cancel := context.WithTimeout(ctx, opTimeout)
		c.rdb.Set(sctx, c.probeKey(sk), c.id, max(ttl, time.Millisecond))
		cancel()
		c.contendLater(sk, ch)
	}
}

func (c *Cluster) keepPending(sk stateKey, ch pool.Change) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.pending[sk]; !ok || !old.At.After(ch.At) {
		c.pending[sk] = ch
	}
}

func (c *Cluster) store(ctx context.Context, ch pool.Change) error {
	body, err := json.Marshal(ch)
	if err != nil {
		return err
	}
	msg, err := json.Marshal(message{From: c.id, Type: "state", Change: &ch})
	if err != nil {
		return err
	}
	sctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	return setState.Run(sctx, c.rdb, []string{c.statesKey()}, fieldOf(ch).field(),
		strconv.FormatInt(ch.At.UnixMicro(), 10), body, c.channel, msg).Err()
}

func cooling(ch pool.Change) bool {
	return ch.State.Cooling && !ch.State.Disabled && !ch.State.BlockedUntil.IsZero() &&
		ch.Kind != pool.ChangeOperatorDisabled && ch.Kind != pool.ChangeOperatorEnabled
}

func (c *Cluster) probeKey(sk stateKey) string {
	return c.prefix + "probe:" + sk.key + ":" + sk.model
}

// applyRemote puts another replica's change in force. A cooling state's
// probe is held back here until the replica that started it had its chance;
// then the replicas contend for the probe lease.
func (c *Cluster) applyRemote(ch pool.Change) {
	var hold time.Time
	if cooling(ch) {
		hold = ch.State.BlockedUntil.Add(probeGrace)
	}
	if c.pool.Apply(ch, hold) && !hold.IsZero() {
		c.contendLater(fieldOf(ch), ch)
	}
}

// contendLater has this replica try for the probe lease of a cooling state
// once the replica that cooled it had its grace to probe.
func (c *Cluster) contendLater(sk stateKey, ch pool.Change) {
	at := ch.State.BlockedUntil.Add(probeGrace)
	c.mu.Lock()
	defer c.mu.Unlock()
	if t := c.timers[sk]; t != nil {
		t.Stop()
	}
	c.timers[sk] = c.clock.AfterFunc(max(at.Sub(c.clock.Now()), 0), func() { c.contend(sk) })
}

func (c *Cluster) contend(sk stateKey) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	won, err := c.rdb.SetNX(ctx, c.probeKey(sk), c.id, probeGrace).Result()
	if err != nil || won {
		c.pool.HoldProbe(sk.key, sk.model, time.Time{}) // no Redis: probe on our own
		c.mu.Lock()
		delete(c.timers, sk)
		c.mu.Unlock()
		return
	}
	c.pool.HoldProbe(sk.key, sk.model, c.clock.Now().Add(probeGrace))
	c.mu.Lock()
	defer c.mu.Unlock()
	c.timers[sk] = c.clock.AfterFunc(probeGrace, func() { c.contend(sk) })
}

// Claim takes the lease of a key's background check for this replica, so
// one replica at a time checks a given key. Without Redis it is granted.
func (c *Cluster) Claim(ctx context.Context, keyID string) bool {
	if !c.up.Load() {
		return true
	}
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	won, err := c.rdb.SetNX(ctx, c.prefix+"check:"+keyID, c.id, checkLease).Result()
	return err != nil || won
}

// Announce tells the other replicas that an admin change of what
// ("models", "tokens", "users") is in the store, so they reload it.
func (c *Cluster) Announce(ctx context.Context, what string) {
	if !c.up.Load() || c.publish(ctx, message{Type: "reload", What: what}) != nil {
		c.mu.Lock()
		c.pending[stateKey{kind: "reload"}] = pool.Change{}
		c.mu.Unlock()
	}
}

func (c *Cluster) publish(ctx context.Context, m message) error {
	m.From = c.id
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	if err := c.rdb.Publish(ctx, c.channel, b).Err(); err != nil {
		c.markDown(err)
		return err
	}
	return nil
}

// subscribe handles the other replicas' messages until ctx ends. go-redis
// reconnects the subscription by itself after an outage.
func (c *Cluster) subscribe(ctx context.Context) {
	ps := c.rdb.Subscribe(ctx, c.channel)
	defer ps.Close()
	msgs := ps.Channel(redis.WithChannelHealthCheckInterval(time.Second))
	for {
		select {
		case <-ctx.Done():
			return
		case m, ok := <-msgs:
			if !ok {
				return
			}
			c.handle(ctx, m.Payload)
		}
	}
}

func (c *Cluster) handle(ctx context.Context, payload string) {
	var m message
	if err := json.Unmarshal([]byte(payload), &m); err != nil || m.From == c.id {
		return
	}
	switch m.Type {
	case "state":
		if m.Change != nil {
			c.applyRemote(*m.Change)
		}
	case "reload":
		if c.handlers.Reload != nil {
			if err := c.handlers.Reload(ctx, m.What); err != nil {
				c.log.Error("reload after another replica's change failed", "what", m.What, "err", err)
			}
		}
	case "lease":
		if c.handlers.Lease != nil {
			c.handlers.Lease(m.What)
		}
	}
}

// resync brings this replica and Redis into agreement after an outage (or
// at start): it offers the changes it made meanwhile (the newest of each
// wins), takes everyone else's, and reloads what the store holds. A second
// pull a moment later catches changes published while the subscription
// was still reconnecting.
func (c *Cluster) resync(ctx context.Context) error {
	c.mu.Lock()
	pending := c.pending
	c.pending = map[stateKey]pool.Change{}
	c.mu.Unlock()
	_, reload := pending[stateKey{kind: "reload"}]
	delete(pending, stateKey{kind: "reload"})
	restore := func(err error) error {
		c.mu.Lock()
		for k, v := range pending {
			if _, ok := c.pending[k]; !ok {
				c.pending[k] = v
			}
		}
		if reload {
			c.pending[stateKey{kind: "reload"}] = pool.Change{}
		}
		c.mu.Unlock()
		return err
	}
	if c.overflow.Swap(false) {
		for _, ch := range c.pool.ChangesOf() {
			if old, ok := pending[fieldOf(ch)]; !ok || old.At.Before(ch.At) {
				pending[fieldOf(ch)] = ch
			}
		}
	}
	for _, ch := range pending {
		if err := c.store(ctx, ch); err != nil {
			return restore(err)
		}
	}
	if err := c.pull(ctx); err != nil {
		return restore(err)
	}
	if reload {
		if err := c.publish(ctx, message{Type: "reload", What: "all"}); err != nil {
			return restore(err)
		}
	}
	if c.handlers.Reload != nil {
		if err := c.handlers.Reload(ctx, "all"); err != nil {
			c.log.Error("reload after reconnecting to redis failed", "err", err)
		}
	}
	if c.handlers.Lease != nil {
		c.handlers.Lease("")
	}
	c.clock.AfterFunc(2*time.Second, func() {
		pctx, cancel := context.WithTimeout(context.Background(), 2*opTimeout)
		defer cancel()
		c.pull(pctx)
	})
	return nil
}

// pull applies every state in Redis that is newer than this replica's.
func (c *Cluster) pull(ctx context.Context) error {
	if c.pool == nil {
		return nil
	}
	sctx, cancel := context.WithTimeout(ctx, 2*opTimeout)
	defer cancel()
	all, err := c.rdb.HGetAll(sctx, c.statesKey()).Result()
	if err != nil {
		return err
	}
	for _, v := range all {
		_, body, ok := strings.Cut(v, "|")
		if !ok {
			continue
		}
		var ch pool.Change
		if json.Unmarshal([]byte(body), &ch) == nil {
			c.applyRemote(ch)
		}
	}
	return nil
}
