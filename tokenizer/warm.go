package tokenizer

// Warm loads the encoding now. keygate calls it in the background at
// start, so no request pays the load (a few hundred milliseconds and some
// 20 MiB) on its path.
func Warm() { once.Do(load) }

// Warmed reports whether the encoding is loaded.
func Warmed() bool { return loaded.Load() }
