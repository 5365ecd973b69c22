// HTTP load generator for the create benchmark, run as its own process so that it does not share
// an event loop with what it measures. Usage: bun bench/load.ts <url> <connections> <seconds> [GET]
// POSTs a payout (expecting 201), or GETs the url (expecting 200), with the API key in
// BENCH_API_KEY (Authorization: Bearer) as every client of the api sends one.
// Prints one JSON object: requests, errors, rps, p50_ms, p99_ms.
export {};

const [url = "http://127.0.0.1:8000/api/payouts/", connections = "64", seconds = "10", method = "POST"] =
  Bun.argv.slice(2);

const body = JSON.stringify({
  amount: "1500.00",
  currency: "RUB",
  recipient_details: "40817810099910004312, BIC 044525225, Ivanov I.I.",
  comment: "benchmark",
});
const authorization: Record<string, string> = process.env.BENCH_API_KEY
  ? { authorization: `Bearer ${process.env.BENCH_API_KEY}` }
  : {};
const latencies: number[] = [];
let errors = 0;
const deadline = performance.now() + Number(seconds) * 1000;

async function client() {
  while (performance.now() < deadline) {
    const started = performance.now();
    try {
      const response =
        method === "GET"
          ? await fetch(url, { headers: authorization })
          : await fetch(url, {
              method: "POST",
              headers: { ...authorization, "content-type": "application/json" },
              body,
            });
      await response.arrayBuffer();
      if (response.status !== (method === "GET" ? 200 : 201)) errors++;
    } catch {
      errors++;
    }
    latencies.push(performance.now() - started);
  }
}

const started = performance.now();
await Promise.all(Array.from({ length: Number(connections) }, client));
const elapsed = (performance.now() - started) / 1000;
latencies.sort((a, b) => a - b);
const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0;
console.log(
  JSON.stringify({
    requests: latencies.length,
    errors,
    rps: Math.round(latencies.length / elapsed),
    p50_ms: Number(at(0.5).toFixed(2)),
    p99_ms: Number(at(0.99).toFixed(2)),
  }),
);
