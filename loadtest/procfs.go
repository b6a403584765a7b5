package loadtest

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// userHZ is the unit of the CPU times in /proc: fixed at 100 by Linux's
// ABI on every architecture Go runs on.
const userHZ = 100

// peakRSS is the most resident memory the child has used (VmHWM), in bytes.
func (p *proc) peakRSS() (int64, error) { return p.statusKB("VmHWM:") }

// cpuTime is the CPU time, user and system, the child has used.
func (p *proc) cpuTime() (time.Duration, error) {
	return cpuTime(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
}

// cpuTime reads the CPU time, user and system, from a /proc/…/stat file.
func cpuTime(path string) (time.Duration, error) {
	stat, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	// The command name, in parentheses, may hold spaces: fields are
	// counted after its closing one, from field 3 (state).
	i := strings.LastIndexByte(string(stat), ')')
	if i < 0 {
		return 0, fmt.Errorf("cannot parse %s", path)
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("cannot parse %s", path)
	}
	return ticks(f[11], f[12]) // fields 14 and 15: utime, stime
}

// serverCPU reads the CPU time a server and the machine have spent.
func serverCPU(p *proc) (time.Duration, machine, error) {
	t, err := p.cpuTime()
	if err != nil {
		return 0, machine{}, err
	}
	m, err := machineCPU()
	return t, m, err
}

// cpuSample is CPU time spent so far: by the harness and its servers
// (ours), and on the machine.
type cpuSample struct {
	ours time.Duration
	machine
}

func sampleCPU(servers []*proc) (cpuSample, error) {
	var s cpuSample
	var err error
	if s.ours, err = cpuTime("/proc/self/stat"); err != nil {
		return s, err
	}
	for _, p := range servers {
		t, err := p.cpuTime()
		if err != nil {
			return s, err
		}
		s.ours += t
	}
	s.machine, err = machineCPU()
	return s, err
}

// lost is how much CPU time the run could not have between two samples:
// what other processes used, and what the hypervisor gave to other
// machines (steal).
func lost(from, to cpuSample) time.Duration {
	return max(0, (to.tasks-from.tasks)-(to.ours-from.ours)) + to.steal - from.steal
}

// machine is the CPU time all cores of the machine have spent so far: in
// processes (tasks), in interrupts (which the kernel charges to no
// process), and stolen by the hypervisor for other machines.
type machine struct{ tasks, irq, steal time.Duration }

// busy is all the time the cores did not idle, or were not ours to use.
func (m machine) busy() time.Duration { return m.tasks + m.irq + m.steal }

func machineCPU() (machine, error) {
	stat, err := os.ReadFile("/proc/stat")
	if err != nil {
		return machine{}, err
	}
	line, _, _ := strings.Cut(string(stat), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return machine{}, errors.New("cannot parse /proc/stat")
	}
	// cpu user nice system idle iowait irq softirq steal
	var m machine
	if m.tasks, err = ticks(f[1], f[2], f[3]); err != nil {
		return m, err
	}
	if m.irq, err = ticks(f[6], f[7]); err != nil {
		return m, err
	}
	m.steal, err = ticks(f[8])
	return m, err
}

func ticks(fields ...string) (time.Duration, error) {
	var sum int64
	for _, s := range fields {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, err
		}
		sum += n
	}
	return time.Duration(sum) * time.Second / userHZ, nil
}
