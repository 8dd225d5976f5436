-- W7's pre-flight (wrk -s): every connection sends three pipelined requests at a
-- time (a GET, a POST with a 5-byte Content-Length body, a GET with a query), and
-- every response must be 200 with Content-Length 11 and the body "hello world".
-- done() prints one JSON line: responses good and bad (the first bad one
-- described), wrk's request count and its socket and status error counts.
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  good, bad, first = 0, 0, ""
  pipelined = wrk.format("GET", "/") ..
    wrk.format("POST", "/form", { ["Content-Type"] = "text/plain" }, "hello") ..
    wrk.format("GET", "/?q=3")
end

function request()
  return pipelined
end

function response(status, headers, body)
  local length
  for name, value in pairs(headers) do
    if string.lower(name) == "content-length" then length = value end
  end
  if status == 200 and length == "11" and body == "hello world" then
    good = good + 1
  else
    bad = bad + 1
    if first == "" then
      first = string.format("status %d, Content-Length %s, body '%s'", status, tostring(length), string.sub(body, 1, 60))
    end
  end
end

local function json_string(s)
  return '"' .. (string.gsub(s, '[%c"\\]', "?")) .. '"'
end

function done(summary, latency, requests)
  local g, b, f = 0, 0, ""
  for _, t in ipairs(threads) do
    g = g + t:get("good")
    b = b + t:get("bad")
    if f == "" then f = t:get("first") end
  end
  local e = summary.errors
  io.write(string.format(
    '{"good":%d,"bad":%d,"first":%s,"requests":%d,"durationUs":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}\n',
    g, b, json_string(f), summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout))
end
