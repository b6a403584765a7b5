//go:build race

package cli_test

// The race detector slows modernc's SQLite, C translated to Go with unsafe
// pointer arithmetic it checks at every step, about twenty times: a
// 10,000-key import that takes 0.4 s takes 5 to 10 s under -race on a busy
// two-core machine. The real budget is checked by a run without -race
// (scripts/test.sh); under -race this only guards against a blow-up.
const importBudgetFactor = 12
