-- wrk script of `make bench`, configured by the environment:
--
--   BENCH_METHOD  GET or POST
--   BENCH_PATH    the URI; with BENCH_TAG set, the unique part
--                 "<tag>-<thread>-<n>" is appended (eventId=...)
--   BENCH_TAG     makes every request unique: eventId=bench-<tag>-<t>-<n>
--   BENCH_SAMPLE  keep the requestId of every Nth 2xx response (0: none)
--   BENCH_OUT     where done() writes its JSON summary
--   BENCH_BODY    bytes of request body to send (0: none); the body is
--                 printable JSON-safe text, the same for every request
--
-- done() writes requests/s, latency percentiles, 2xx vs other responses
-- and socket errors as one JSON object.

local method = os.getenv("BENCH_METHOD") or "GET"
local path = os.getenv("BENCH_PATH") or "/"
local tag = os.getenv("BENCH_TAG") or ""
local sample = tonumber(os.getenv("BENCH_SAMPLE") or "0")
local out = os.getenv("BENCH_OUT") or "/dev/stdout"
local body_bytes = tonumber(os.getenv("BENCH_BODY") or "0")
local body = nil
if body_bytes > 0 then
    body = string.rep("0123456789abcdef", math.ceil(body_bytes / 16))
    body = string.sub(body, 1, body_bytes)
end

local threads = {}
local counter = 1

function setup(thread)
    thread:set("tid", counter)
    counter = counter + 1
    table.insert(threads, thread)
end

function init(args)
    n = 0
    ok = 0
    other = 0
    samples = {}
    prefix = path
    if tag ~= "" then
        prefix = path .. "bench-" .. tag .. "-" .. tid .. "-"
    end
    if tag == "" then
        static = wrk.format(method, path, nil, body)
    end
end

function request()
    if static then
        return static
    end
    n = n + 1
    return wrk.format(method, prefix .. n, nil, body)
end

-- only defined when needed: wrk parses responses for lua only then
if sample > 0 then
    function response(status, headers, body)
        if status >= 200 and status < 300 then
            ok = ok + 1
            if sample > 0 and ok % sample == 0 then
                local id = string.match(body, '"requestId":"([%x-]+)"')
                if id then
                    samples[#samples + 1] = ok .. " " .. id
                end
            end
        else
            other = other + 1
        end
    end
end

function done(summary, latency, requests)
    local ok2, other2, ids = 0, 0, {}
    for _, t in ipairs(threads) do
        ok2 = ok2 + (t:get("ok") or 0)
        other2 = other2 + (t:get("other") or 0)
        local s = t:get("samples")
        if s then
            for _, v in ipairs(s) do
                ids[#ids + 1] = '"' .. t:get("tid") .. " " .. v .. '"'
            end
        end
    end

    local e = summary.errors
    local socket_errors = e.connect + e.read + e.write + e.timeout

    if sample == 0 then
        -- no response(): wrk counts status >= 400 itself
        ok2 = summary.requests - e.status
        other2 = e.status
    end

    local f = io.open(out, "w")
    f:write(string.format(
        '{"requests":%d,"duration_us":%d,"rps":%.1f,' ..
        '"p50_ms":%.3f,"p90_ms":%.3f,"p99_ms":%.3f,"max_ms":%.3f,' ..
        '"mean_ms":%.3f,"ok":%d,"ok_rps":%.1f,"other":%d,' ..
        '"socket_errors":%d,' ..
        '"samples":[%s]}\n',
        summary.requests, summary.duration,
        summary.requests / (summary.duration / 1e6),
        latency:percentile(50) / 1000, latency:percentile(90) / 1000,
        latency:percentile(99) / 1000, latency.max / 1000,
        latency.mean / 1000, ok2, ok2 / (summary.duration / 1e6), other2,
        socket_errors,
        table.concat(ids, ",")))
    f:close()
end
