-- wrk script: replay pre-generated, distinct, stamped requests (one per line: BODY <TAB> X-STAMP).
--
-- Usage: wrk -t T -c C -d D --latency -s bench/stamped.lua URL -- REQUESTS_FILE T
-- Thread k (0-based) sends only lines whose 0-based index i satisfies i % T == k, in order, so
-- no two threads ever send the same body. If a thread runs out of lines it starts again from
-- its first one (counted in `wrapped`; bench_sign.py warns, since repeats hit the idempotency
-- cache of the daemon). Non-200 answers are counted and the first few are printed.
-- done() prints one machine-readable line starting with BENCH_JSON.

local threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function init(args)
  local file = args[1]
  local nthreads = tonumber(args[2])
  reqs = {}
  local i = 0
  for line in io.lines(file) do
    if i % nthreads == id then
      local tab = line:find("\t", 1, true)
      local body = line:sub(1, tab - 1)
      local stamp = line:sub(tab + 1)
      reqs[#reqs + 1] = wrk.format("POST", nil, { ["Content-Type"] = "application/json", ["X-Stamp"] = stamp }, body)
    end
    i = i + 1
  end
  n = #reqs
  idx = 0
  wrapped = 0
  sent = 0
  non200 = 0
end

function request()
  idx = idx + 1
  if idx > n then
    idx = 1
    wrapped = wrapped + 1
  end
  sent = sent + 1
  return reqs[idx]
end

function response(status, headers, body)
  if status ~= 200 then
    non200 = non200 + 1
    if non200 <= 3 then
      io.stderr:write(string.format("non-200 response %d: %s\n", status, body:sub(1, 300)))
    end
  end
end

function done(summary, latency, requests)
  local w, bad, s, lines = 0, 0, 0, 0
  for _, t in ipairs(threads) do
    w = w + t:get("wrapped")
    bad = bad + t:get("non200")
    s = s + t:get("sent")
    lines = lines + t:get("n")
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"non200":%d,"status_errors":%d,"connect":%d,"read":%d,' ..
    '"write":%d,"timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"wrapped":%d,"sent":%d,"lines":%d}\n',
    summary.requests, summary.duration, bad, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, w, s, lines))
end
