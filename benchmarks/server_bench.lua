-- wrk script for server_bench.py: random keys PREFIX0..PREFIX(NKEYS-1), one request each.
--   BENCH_METHOD  GET | PUT | POST
--   BENCH_BODY    none | native ({"value": …}) | kv ({"data": {"value": …}}), 32 random bytes hex
--   BENCH_ADDRS   optional "host:port,host:port": thread i talks to address i (mod count)
--   BENCH_SEED    base of the per-thread random seed
local token = os.getenv("BENCH_TOKEN")
local prefix = os.getenv("BENCH_PREFIX")
local method = os.getenv("BENCH_METHOD") or "GET"
local body_kind = os.getenv("BENCH_BODY") or "none"
local nkeys = tonumber(os.getenv("NKEYS") or "1000")
local seed = tonumber(os.getenv("BENCH_SEED") or "1000")
local headers = { ["X-Vault-Token"] = token }
if body_kind ~= "none" then headers["Content-Type"] = "application/json" end
local bodies = {}

-- Main state only: each thread's own state gets its number as the global `tid`. (A chunk-level
-- `local tid` would shadow that global in every thread, and all threads would share one seed.)
local counter = 0
local addrs = nil
setup = function(thread)
  counter = counter + 1
  thread:set("tid", counter)
  local spec = os.getenv("BENCH_ADDRS")
  if spec and spec ~= "" then
    if not addrs then
      addrs = {}
      for host, port in spec:gmatch("([^,:]+):(%d+)") do
        addrs[#addrs + 1] = wrk.lookup(host, port)[1]
      end
    end
    thread.addr = addrs[(counter - 1) % #addrs + 1]
  end
end

init = function(args)
  math.randomseed(seed + (rawget(_G, "tid") or 0))
  if body_kind == "none" then return end
  local hex = "0123456789abcdef"
  for i = 1, 256 do
    local t = {}
    for j = 1, 64 do local r = math.random(1, 16); t[j] = hex:sub(r, r) end
    local value = '"' .. table.concat(t) .. '"'
    if body_kind == "kv" then
      bodies[i] = '{"data":{"value":' .. value .. '}}'
    else
      bodies[i] = '{"value":' .. value .. '}'
    end
  end
end

request = function()
  local path = prefix .. math.random(0, nkeys - 1)
  if body_kind == "none" then return wrk.format(method, path, headers) end
  return wrk.format(method, path, headers, bodies[math.random(1, 256)])
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"rps":%.1f,"p50_us":%d,"p99_us":%d,' ..
    '"max_us":%d,"err_connect":%d,"err_read":%d,"err_write":%d,"err_status":%d,' ..
    '"err_timeout":%d}\n',
    summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout))
end
