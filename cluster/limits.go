package cluster

import (
	"context"
	"strings"

	"github.com/keygate/keygate/limit"
	"github.com/redis/go-redis/v9"
)

var _ limit.Backend = (*Cluster)(nil)

// take books a debt to a shared counter, then grants all of need or
// nothing, and more when there is room: a fair share of what is left,
// half of it split over the replicas, so that together they never hold
// more than what is left and the shares shrink to single units near the
// limit. The previous bucket counts with its weight (the sliding window),
// rounded up.
//
// KEYS: bucket, [previous bucket]. ARGV: max, weight, need, debt, seed, replicas, ttl ms.
var take = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur then cur = tonumber(cur) else cur = tonumber(ARGV[5]) end
local prev = 0
if #KEYS > 1 then prev = tonumber(redis.call('GET', KEYS[2]) or '0') end
local need = tonumber(ARGV[3])
cur = cur + tonumber(ARGV[4])
local avail = tonumber(ARGV[1]) - cur - math.ceil(prev * tonumber(ARGV[2]))
local grant = 0
if need > 0 and avail >= need then
  grant = math.max(need, math.floor(avail / (2 * tonumber(ARGV[6]))))
end
cur = cur + grant
redis.call('SET', KEYS[1], cur, 'KEEPTTL')
local ttl = tonumber(ARGV[7])
if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
return {grant, math.max(avail - grant, 0)}
`)

// counterKey names a bucket in Redis. The part before the bucket's last
// ':' is the hash tag, so a bucket and its predecessor share a Cluster slot.
func (c *Cluster) counterKey(bucket string) string {
	i := strings.LastIndexByte(bucket, ':')
	if i < 0 {
		return c.prefix + "lim:{" + bucket + "}"
	}
	return c.prefix + "lim:{" + bucket[:i] + "}" + bucket[i:]
}

// Take is limit.Backend's: one round trip, with a lease's worth of units.
func (c *Cluster) Take(ctx context.Context, ct limit.Counter, need, debt int64) (granted, left int64, err error) {
	keys := []string{c.counterKey(ct.Bucket)}
	if ct.Prev != "" && ct.Weight > 0 {
		keys = append(keys, c.counterKey(ct.Prev))
	}
	res, err := take.Run(ctx, c.rdb, keys, ct.Max, ct.Weight, need, debt, ct.Seed, c.Replicas(), ct.TTL.Milliseconds()).Int64Slice()
	if err != nil {
		c.markDown(err)
		return 0, 0, err
	}
	return res[0], res[1], nil
}

// give returns units to a bucket that still exists (one lost with a
// restarted Redis starts again from nothing), never below zero.
var give = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local n = math.max(tonumber(v) - tonumber(ARGV[1]), 0)
redis.call('SET', KEYS[1], n, 'KEEPTTL')
return n
`)

// Give is limit.Backend's: unused units go back to their bucket.
func (c *Cluster) Give(ctx context.Context, bucket string, units int64) error {
	if err := give.Run(ctx, c.rdb, []string{c.counterKey(bucket)}, units).Err(); err != nil {
		c.markDown(err)
		return err
	}
	return nil
}

// Track is limit.Backend's.
func (c *Cluster) Track(id string, s limit.Sweeper) { c.sweepers.Store(id, s) }
