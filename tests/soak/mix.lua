-- mix.lua - wrk script of scripts/soak: a mix of reads and writes by
-- several logged-in users, counting every response by status.
--
--   wrk -c64 -d60s -s mix.lua http://127.0.0.1:PORT -- USERS.lua
--
-- USERS.lua (written by soak.py) sets `users`, a list of
-- {cookie = "sessionid=...", chat = <group chat id>, friend = <user id>}.
-- done() prints one line "SOAK_WRK {json}" with the counts per status, the
-- 4xx answers that were not the two deliberate ones (a missing user: 404,
-- a PATCH of a non-friend: 400, both naming id 999999999), and wrk's own
-- socket errors. (response() cannot tell which request it answers, so
-- answers are told apart by status and body.)

local threads = {}

function setup(thread)
    table.insert(threads, thread)
end

local kinds = {
    -- {weight, name}
    {22, "get_user"}, {14, "get_chats"}, {14, "get_messages"}, {8, "get_friends"},
    {4, "get_chat"}, {10, "patch_user"}, {10, "add_group"}, {6, "patch_friend"},
    {6, "find"}, {4, "missing"}, {2, "not_friend"},
}
local total = 0
for _, k in ipairs(kinds) do total = total + k[1] end

function init(args)
    dofile(args[1])
    math.randomseed(os.time() + (tonumber(tostring({}):match("0x(%x+)"), 16) or 0))
    statuses = {}
    unexpected_4xx = 0
    samples = {}
    n = 0
end

local function pick()
    local r = math.random(total)
    for _, k in ipairs(kinds) do
        r = r - k[1]
        if r <= 0 then return k[2] end
    end
end

local json_headers = function(u)
    return {["Cookie"] = u.cookie, ["Content-Type"] = "application/json"}
end

function request()
    n = n + 1
    local u = users[math.random(#users)]
    local kind = pick()
    local h = {["Cookie"] = u.cookie}
    if kind == "get_user" then
        return wrk.format("GET", "/api/user", h)
    elseif kind == "get_chats" then
        return wrk.format("GET", "/api/chat", h)
    elseif kind == "get_messages" then
        return wrk.format("GET", "/api/chat/" .. u.chat .. "/messages?limit=20", h)
    elseif kind == "get_friends" then
        return wrk.format("GET", "/api/friend", h)
    elseif kind == "get_chat" then
        return wrk.format("GET", "/api/chat/" .. u.chat, h)
    elseif kind == "patch_user" then
        return wrk.format("PATCH", "/api/user", json_headers(u),
            '{"avatar_url":"https://example.com/soak/' .. math.random(1000000) .. '.png"}')
    elseif kind == "add_group" then
        return wrk.format("POST", "/api/friend/group/add", json_headers(u),
            '{"group_name":"soak ' .. n .. '"}')
    elseif kind == "patch_friend" then
        return wrk.format("PATCH", "/api/friend/" .. u.friend, json_headers(u),
            '{"nickname":"nick ' .. math.random(1000000) .. '"}')
    elseif kind == "find" then
        return wrk.format("POST", "/api/friend/find", json_headers(u), '{"name_contains":"soak"}')
    elseif kind == "missing" then
        -- expected 404: shows that 4xx answers are counted apart
        return wrk.format("GET", "/api/user/999999999", h)
    else
        -- expected 400: PATCH of someone who is not a friend
        return wrk.format("PATCH", "/api/friend/999999999", json_headers(u), '{"nickname":"x"}')
    end
end

function response(status, headers, body)
    statuses[status] = (statuses[status] or 0) + 1
    if status >= 400 then
        local deliberate = (status == 404 or status == 400) and body and body:find("999999999", 1, true)
        if not deliberate and status < 500 then unexpected_4xx = unexpected_4xx + 1 end
        if not deliberate and #samples < 5 then
            samples[#samples + 1] = status .. " " .. (body or ""):sub(1, 120)
        end
    end
end

local function json_map(t)
    local parts = {}
    for k, v in pairs(t) do
        parts[#parts + 1] = string.format('"%s":%d', tostring(k), v)
    end
    return "{" .. table.concat(parts, ",") .. "}"
end

function done(summary, latency, requests)
    local all, unexpected, bodies = {}, 0, {}
    for _, t in ipairs(threads) do
        for k, v in pairs(t:get("statuses")) do all[k] = (all[k] or 0) + v end
        unexpected = unexpected + t:get("unexpected_4xx")
        for _, b in ipairs(t:get("samples")) do
            bodies[#bodies + 1] = '"' .. b:gsub('[%c"\\]', "?") .. '"'
        end
    end
    local e = summary.errors
    io.write(string.format(
        'SOAK_WRK {"requests":%d,"duration_us":%d,"statuses":%s,"unexpected_4xx":%d,"samples":[%s],' ..
        '"errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d},' ..
        '"latency_ms":{"p50":%.2f,"p99":%.2f,"max":%.2f}}\n',
        summary.requests, summary.duration, json_map(all), unexpected, table.concat(bodies, ","),
        e.connect, e.read, e.write, e.timeout,
        latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
