//go:build !race

package cli_test

const importBudgetFactor = 1
