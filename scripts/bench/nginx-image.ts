/**
 * The image the benchmarks serve, localhost/podsock-bench-nginx, and its nginx configuration:
 * build-nginx-image.sh builds the image with nginx-bench.conf as /etc/nginx/nginx.conf (listening on
 * 8080), and the variants that hand nginx an inherited socket run the same file with that socket's
 * address in its `listen` directive.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot, run } from './host.js';

/** The image's default name (build-nginx-image.sh). */
export const BENCH_IMAGE = 'localhost/podsock-bench-nginx:latest';

/** The image's own `listen` line in nginx-bench.conf. */
const IMAGE_LISTEN = '    listen 8080 default_server;\n';

/**
 * nginx-bench.conf with `listen ADDRESS` instead of 8080. nginx adopts a socket named in `NGINX=3;`
 * only when a `listen` directive has exactly the socket's address (ngx_set_inherited_sockets()
 * matches by sockaddr); otherwise it would bind its own.
 */
export function benchNginxConf(address: string): string {
  const conf = readFileSync(join(repoRoot, 'scripts', 'bench', 'nginx-bench.conf'), 'utf8');
  if (!conf.includes(IMAGE_LISTEN)) throw new Error(`Expected scripts/bench/nginx-bench.conf to hold '${IMAGE_LISTEN.trim()}'`);
  return conf.replace(IMAGE_LISTEN, `    listen ${address} default_server;\n`);
}

/** Builds `image` with build-nginx-image.sh unless it is up to date (the first build takes minutes). */
export async function buildBenchImage(image: string): Promise<void> {
  await run('bash', [join(repoRoot, 'scripts', 'bench', 'build-nginx-image.sh'), image], { timeoutMs: 30 * 60_000, inherit: true });
}
