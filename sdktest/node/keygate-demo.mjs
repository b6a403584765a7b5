// Starts `keygate demo` (its mock provider speaks every provider format,
// with a model behind each) on a free loopback port and reads the
// addresses and tokens from its banner.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export async function startDemo() {
  let bin = process.env.KEYGATE_BIN;
  if (!bin) { // scripts/sdk-test.sh runs this from sdktest/node
    bin = join(mkdtempSync(join(tmpdir(), 'keygate-sdk-')), 'keygate');
    execFileSync('go', ['build', '-o', bin, './cmd/keygate'], { cwd: new URL('../..', import.meta.url).pathname, stdio: 'inherit' });
  }
  const proc = spawn(bin, ['demo', '--listen', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const banner = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('keygate demo did not start:\n' + out)), 30000);
    proc.stdout.on('data', (chunk) => {
      out += chunk;
      if (out.includes('Press Ctrl-C')) {
        clearTimeout(timer);
        resolve(out);
      }
    });
    proc.stderr.on('data', (chunk) => { out += chunk; });
    proc.on('exit', (code) => reject(new Error(`keygate demo exited ${code}:\n${out}`)));
  });
  const addr = banner.match(/running on (http:\/\/[0-9.:]+)/)[1];
  return {
    url: addr,
    token: banner.match(/token:\s+(\S+)/)[1],
    admin: banner.match(/admin token:\s+(\S+)/)[1],
    stop: () => new Promise((resolve) => { proc.once('exit', resolve); proc.kill('SIGTERM'); }),
  };
}
