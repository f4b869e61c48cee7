// ConnectionRegistry against a real redis-server, with several instances in
// one process (each its own hub, RedisPubSub, registry and Redis connections;
// an instance that must crash runs on its own io_context, which simply stops
// being run: from Redis's side exactly a kill -9). Direct messages to a
// connection and to a user across instances, presence across instances, TTL
// refresh, crash cleanup by the janitor, graceful shutdown leaving no key,
// and re-registration after Redis restarted empty. tests/e2e/ does the same
// with chat_server processes.
#include <catch2/catch.hpp>

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "support/fast_redis_config.hpp"
#include "support/json_reader.hpp"
#include "support/memory_transport.hpp"
#include "support/redis_server.hpp"
#include "support/run_until.hpp"
#include "wshub/connection_registry.hpp"
#include "wshub/hub.hpp"
#include "wshub/redis_pubsub.hpp"

using namespace wshub;
using namespace wshub::test;
using namespace std::chrono_literals;

namespace {

struct RegistryPolicies : DefaultPolicies {
    using registry = ConnectionRegistry;
};

// Short, so the tests are quick, yet with room for a loaded machine: a live
// instance whose loop stalls for longer than ttl - heartbeat would count as dead.
struct Timing {
    std::chrono::milliseconds heartbeat{200};
    std::chrono::milliseconds ttl{1000};
    std::chrono::milliseconds janitor{300};
};

// One instance with its own io_context.
struct Node {
    Node(const RedisServer& redis, const std::string& id, Timing timing = {})
        : pubsub(io.get_executor(), fast_pubsub_config(redis)),
          registry(io.get_executor(), registry_config(redis, timing)),
          hub(io.get_executor(), transport, pubsub, registry, hub_config(id)) {}

    static ConnectionRegistryConfig registry_config(const RedisServer& redis, Timing timing) {
        auto config = fast_redis_config<ConnectionRegistryConfig>(redis);
        config.heartbeat_interval = timing.heartbeat;
        config.ttl = timing.ttl;
        config.janitor_interval = timing.janitor;
        return config;
    }

    static HubConfig hub_config(const std::string& id) {
        HubConfig config;
        config.instance_id = id;
        config.prefix = "t:";
        config.publish_rate_per_second = 0;
        config.presence_prefixes = {"room"};
        config.shutdown_timeout = 5000ms;
        return config;
    }

    ConnectionId connect(const std::string& user = {}) {
        ConnectionInfo info;
        info.user_id = user;
        return transport.connect(info);
    }
    std::string public_id(ConnectionId id) const { return hub.public_id(id); }
    std::vector<std::string> frames(ConnectionId id, const std::string& type) const {
        return frames_of_type(transport.peer(id).received, type);
    }
    bool ready() const { return registry.stats().up && pubsub.state() == PubSubState::up && hub.stats().pubsub_up; }

    asio::io_context io;
    MemoryTransport transport;
    RedisPubSub pubsub;
    ConnectionRegistry registry;
    Hub<MemoryTransport, RedisPubSub, RegistryPolicies> hub;
};

// Runs every live node's io_context in turn until `done`.
bool run_nodes(const std::vector<Node*>& nodes, const std::function<bool()>& done,
               std::chrono::milliseconds deadline = 20s) {
    const auto until = std::chrono::steady_clock::now() + deadline;
    while (!done()) {
        if (std::chrono::steady_clock::now() >= until) return false;
        for (Node* node : nodes) {
            node->io.restart();
            node->io.run_for(2ms);
        }
    }
    return true;
}

// Waits until the inbox of every node is subscribed in Redis (direct messages need it).
bool all_ready(const RedisServer& redis, const std::vector<Node*>& nodes) {
    return run_nodes(nodes, [&] {
        for (Node* node : nodes) {
            if (!node->ready()) return false;
        }
        return redis.cli_list("PUBSUB", "CHANNELS", "t:inbox:*").size() == nodes.size();
    });
}

std::vector<std::string> keys_naming(const RedisServer& redis, const std::string& instance) {
    return redis.cli_list("KEYS", "*" + instance + "*");
}

}  // namespace

TEST_CASE("a direct message reaches a connection on another instance; unknown ids get not_found",
          "[redis][registry]") {
    RedisServer redis;
    Node a(redis, "node-a");
    Node b(redis, "node-b");
    REQUIRE(all_ready(redis, {&a, &b}));
    const auto sender = a.connect();
    const auto target = b.connect();
    REQUIRE(run_nodes({&a, &b}, [&] { return !redis.cli("GET", "t:conn:" + b.public_id(target)).empty(); }));

    a.transport.receive(sender, R"({"type":"send","to":")" + b.public_id(target) + R"(","data":{"t":"psst"},"id":1})");
    REQUIRE(run_nodes({&a, &b}, [&] { return !b.frames(target, "direct").empty() && !a.frames(sender, "ack").empty(); }));
    const auto direct = b.frames(target, "direct").front();
    CHECK(direct == R"({"type":"direct","from":")" + a.public_id(sender) + R"(","data":{"t":"psst"}})");
    CHECK(a.registry.stats().direct_sent == 1);

    for (const std::string to : {"node-b-999", "node-zz-1", "nonsense", ""}) {
        const auto errors_before = a.frames(sender, "error").size();
        a.transport.receive(sender, R"({"type":"send","to":")" + to + R"(","data":1,"id":"x"})");
        REQUIRE(run_nodes({&a, &b}, [&] { return a.frames(sender, "error").size() == errors_before + 1; }));
        CHECK(string_field(a.frames(sender, "error").back(), "code") == "not_found");
    }
    CHECK(b.frames(target, "direct").size() == 1);
}

TEST_CASE("lookup tells instance, user and connect time; a closed connection is not found", "[redis][registry]") {
    RedisServer redis;
    Node a(redis, "node-a");
    REQUIRE(all_ready(redis, {&a}));
    const auto conn = a.connect("alice");
    const auto id = a.public_id(conn);
    REQUIRE(run_nodes({&a}, [&] { return !redis.cli("GET", "t:conn:" + id).empty(); }));

    std::error_code result = make_error_code(error::internal);
    ConnectionRecord record;
    bool done = false;
    a.registry.lookup(id, [&](std::error_code ec, ConnectionRecord r) {
        result = ec;
        record = std::move(r);
        done = true;
    });
    REQUIRE(run_nodes({&a}, [&] { return done; }));
    CHECK_FALSE(result);
    CHECK(record.instance == "node-a");
    CHECK(record.user == "alice");
    CHECK(record.since_ms > 1'600'000'000'000);
    CHECK_FALSE(redis.cli("ZSCORE", "t:user:alice", id).empty());

    a.transport.disconnect(conn);
    REQUIRE(run_nodes({&a}, [&] { return redis.cli("EXISTS", "t:conn:" + id) == "0"; }));
    CHECK(redis.cli("ZSCORE", "t:user:alice", id).empty());
    done = false;
    a.registry.lookup(id, [&](std::error_code ec, ConnectionRecord) {
        result = ec;
        done = true;
    });
    REQUIRE(run_nodes({&a}, [&] { return done; }));
    CHECK(result == make_error_code(error::not_found));
}

TEST_CASE("a send to user:<id> reaches every connection of the user on every instance", "[redis][registry]") {
    RedisServer redis;
    Node a(redis, "node-a");
    Node b(redis, "node-b");
    REQUIRE(all_ready(redis, {&a, &b}));
    const auto sender = a.connect("bob");
    const auto alice_a = a.connect("alice");
    const auto alice_b1 = b.connect("alice");
    const auto alice_b2 = b.connect("alice");
    const auto carol_b = b.connect("carol");
    REQUIRE(run_nodes({&a, &b}, [&] { return redis.cli("ZCARD", "t:user:alice") == "3"; }));

    a.transport.receive(sender, R"({"type":"send","to":"user:alice","data":"hi","id":7})");
    REQUIRE(run_nodes({&a, &b}, [&] {
        return a.frames(alice_a, "direct").size() == 1 && b.frames(alice_b1, "direct").size() == 1 &&
               b.frames(alice_b2, "direct").size() == 1 && !a.frames(sender, "ack").empty();
    }));
    CHECK(string_field(b.frames(alice_b2, "direct").front(), "from") == a.public_id(sender));
    CHECK(b.frames(carol_b, "direct").empty());
    CHECK(a.frames(sender, "direct").empty());

    a.transport.receive(sender, R"({"type":"send","to":"user:nobody","data":"hi","id":8})");
    REQUIRE(run_nodes({&a, &b}, [&] { return !a.frames(sender, "error").empty(); }));
    CHECK(string_field(a.frames(sender, "error").back(), "code") == "not_found");

    // The server-side API does the same.
    std::error_code result = make_error_code(error::internal);
    bool done = false;
    b.hub.send_to_user("alice", R"({"n":1})", "ops", [&](std::error_code ec) {
        result = ec;
        done = true;
    });
    REQUIRE(run_nodes({&a, &b}, [&] { return done && a.frames(alice_a, "direct").size() == 2; }));
    CHECK_FALSE(result);
    CHECK(a.frames(alice_a, "direct").back() == R"({"type":"direct","from":"ops","data":{"n":1}})");
}

TEST_CASE("presence across instances: members, join and leave", "[redis][registry][presence]") {
    RedisServer redis;
    Node a(redis, "node-a");
    Node b(redis, "node-b");
    REQUIRE(all_ready(redis, {&a, &b}));
    const auto on_a = a.connect("alice");
    const auto on_b = b.connect("bob");
    a.transport.receive(on_a, R"({"type":"subscribe","channel":"room:1","id":1})");
    REQUIRE(run_nodes({&a, &b}, [&] { return !a.frames(on_a, "ack").empty(); }));
    b.transport.receive(on_b, R"({"type":"subscribe","channel":"room:1","id":1})");
    REQUIRE(run_nodes({&a, &b}, [&] { return !a.frames(on_a, "join").empty() && !b.frames(on_b, "ack").empty(); }));
    const auto join = parse_frame(a.frames(on_a, "join").back());
    CHECK(std::string(join["connection"].GetString()) == b.public_id(on_b));
    CHECK(std::string(join["user"].GetString()) == "bob");

    a.transport.receive(on_a, R"({"type":"presence","channel":"room:1","id":"who"})");
    REQUIRE(run_nodes({&a, &b}, [&] {
        for (const auto& ack : a.frames(on_a, "ack")) {
            if (ack.find("\"members\"") != std::string::npos) return true;
        }
        return false;
    }));
    std::string members_ack;
    for (const auto& ack : a.frames(on_a, "ack")) {
        if (ack.find("\"members\"") != std::string::npos) members_ack = ack;
    }
    const auto doc = parse_frame(members_ack);
    std::set<std::string> members;
    for (const auto& m : doc["members"].GetArray()) members.insert(m.GetString());
    CHECK(members == std::set<std::string>{a.public_id(on_a), b.public_id(on_b)});
    CHECK(std::string(doc["users"][b.public_id(on_b).c_str()].GetString()) == "bob");

    // Presence off for other channels.
    a.transport.receive(on_a, R"({"type":"presence","channel":"chat","id":"no"})");
    REQUIRE(run_nodes({&a, &b}, [&] { return !a.frames(on_a, "error").empty(); }));
    CHECK(string_field(a.frames(on_a, "error").back(), "code") == "not_found");

    b.transport.disconnect(on_b);
    REQUIRE(run_nodes({&a, &b}, [&] { return !a.frames(on_a, "leave").empty(); }));
    CHECK(string_field(a.frames(on_a, "leave").back(), "connection") == b.public_id(on_b));
    REQUIRE(run_nodes({&a, &b}, [&] { return redis.cli("ZCARD", "t:presence:room:1") == "1"; }));
}

TEST_CASE("a connection kept for longer than 3 TTLs stays registered", "[redis][registry]") {
    RedisServer redis;
    const Timing timing{150ms, 800ms, 300ms};
    Node a(redis, "node-a", timing);
    REQUIRE(all_ready(redis, {&a}));
    const auto conn = a.connect();
    a.transport.receive(conn, R"({"type":"subscribe","channel":"room:x","id":1})");
    const auto key = "t:conn:" + a.public_id(conn);
    REQUIRE(run_nodes({&a}, [&] { return !redis.cli("GET", key).empty(); }));
    const auto heartbeats = a.registry.stats().heartbeats;
    const auto until = std::chrono::steady_clock::now() + 4 * timing.ttl;
    REQUIRE(run_nodes({&a}, [&] { return std::chrono::steady_clock::now() >= until; }));
    CHECK(a.registry.stats().heartbeats >= heartbeats + 4);  // the refresh ran: not luck
    CHECK_FALSE(redis.cli("GET", key).empty());
    CHECK(redis.cli("ZCARD", "t:presence:room:x") == "1");
    CHECK(redis.cli("EXISTS", "t:instance:node-a") == "1");
    const auto pttl = std::stoll(redis.cli("PTTL", key));
    CHECK(pttl > 0);
    CHECK(pttl <= timing.ttl.count());
}

TEST_CASE("kill -9 of an instance: within TTL + janitor interval its entries and presence are gone",
          "[redis][registry][crash]") {
    RedisServer redis;
    Node a(redis, "node-a");
    Node c(redis, "node-c");
    auto b = std::make_unique<Node>(redis, "node-b");
    REQUIRE(all_ready(redis, {&a, b.get(), &c}));
    const auto watcher = a.connect("alice");
    a.transport.receive(watcher, R"({"type":"subscribe","channel":"room:1","id":1})");
    REQUIRE(run_nodes({&a, b.get(), &c}, [&] { return !a.frames(watcher, "ack").empty(); }));
    std::vector<std::string> doomed;
    for (int i = 0; i < 3; ++i) {
        const auto conn = b->connect("bob");
        b->transport.receive(conn, R"({"type":"subscribe","channel":"room:1","id":1})");
        doomed.push_back(b->public_id(conn));
    }
    REQUIRE(run_nodes({&a, b.get(), &c}, [&] {
        return a.frames(watcher, "join").size() == 3 && redis.cli("ZCARD", "t:presence:room:1") == "4";
    }));
    CHECK_FALSE(keys_naming(redis, "node-b").empty());

    b.reset();  // its io_context is never run again: no close, no shutdown, no goodbye
    const auto crashed = std::chrono::steady_clock::now();
    REQUIRE(run_nodes({&a, &c}, [&] { return keys_naming(redis, "node-b").empty(); }));
    INFO("cleaned after " << std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - crashed).count() << " ms");
    REQUIRE(run_nodes({&a, &c}, [&] { return a.frames(watcher, "leave").size() >= 3; }));
    CHECK(a.frames(watcher, "leave").size() == 3);  // one each, and none for a live member
    std::set<std::string> left;
    for (const auto& frame : a.frames(watcher, "leave")) left.insert(string_field(frame, "connection"));
    CHECK(left == std::set<std::string>(doomed.begin(), doomed.end()));
    CHECK(redis.cli("ZCARD", "t:presence:room:1") == "1");
    CHECK(redis.cli("SISMEMBER", "t:instances", "node-b") == "0");
    CHECK(redis.cli("EXISTS", "t:user:bob") == "0");
    CHECK(a.registry.stats().instances_cleaned + c.registry.stats().instances_cleaned == 1);  // one janitor at a time

    a.transport.receive(watcher, R"({"type":"send","to":")" + doomed.front() + R"(","data":1,"id":2})");
    REQUIRE(run_nodes({&a, &c}, [&] { return !a.frames(watcher, "error").empty(); }));
    CHECK(string_field(a.frames(watcher, "error").back(), "code") == "not_found");
}

TEST_CASE("graceful shutdown leaves no key with the instance's id", "[redis][registry]") {
    RedisServer redis;
    Node a(redis, "node-a");
    Node b(redis, "node-b");
    REQUIRE(all_ready(redis, {&a, &b}));
    const auto stays = b.connect("bob");
    b.transport.receive(stays, R"({"type":"subscribe","channel":"room:1","id":1})");
    for (int i = 0; i < 5; ++i) {
        const auto conn = a.connect("alice");
        a.transport.receive(conn, R"({"type":"subscribe","channel":"room:1","id":1})");
    }
    REQUIRE(run_nodes({&a, &b}, [&] { return redis.cli("ZCARD", "t:presence:room:1") == "6"; }));
    CHECK_FALSE(keys_naming(redis, "node-a").empty());

    bool done = false;
    a.hub.shutdown([&] { done = true; });
    REQUIRE(run_nodes({&a, &b}, [&] { return done; }));
    a.pubsub.close();
    CHECK(keys_naming(redis, "node-a").empty());
    CHECK(redis.cli("SISMEMBER", "t:instances", "node-a") == "0");
    CHECK(redis.cli("ZCARD", "t:presence:room:1") == "1");
    CHECK(redis.cli("EXISTS", "t:user:alice") == "0");
    REQUIRE(run_nodes({&b}, [&] { return b.frames(stays, "leave").size() == 5; }));
}

TEST_CASE("Redis restarted empty under a live registry: every entry is written again", "[redis][registry][outage]") {
    RedisServer redis;
    Node a(redis, "node-a");
    REQUIRE(all_ready(redis, {&a}));
    const auto conn = a.connect("alice");
    a.transport.receive(conn, R"({"type":"subscribe","channel":"room:1","id":1})");
    const auto key = "t:conn:" + a.public_id(conn);
    REQUIRE(run_nodes({&a}, [&] { return !redis.cli("GET", key).empty(); }));
    const auto reregistrations = a.registry.stats().reregistrations;

    redis.kill9();
    REQUIRE(run_nodes({&a}, [&] { return !a.registry.stats().up; }));
    // While Redis is down a send fails fast with unavailable, never hangs.
    a.transport.receive(conn, R"({"type":"send","to":"node-x-1","data":1,"id":"down"})");
    REQUIRE(run_nodes({&a}, [&] { return !a.frames(conn, "error").empty(); }));
    CHECK(string_field(a.frames(conn, "error").back(), "code") == "unavailable");

    redis.restart();  // --save "": it comes back empty
    REQUIRE(run_nodes({&a}, [&] {
        return !redis.cli("GET", key).empty() && redis.cli("ZCARD", "t:presence:room:1") == "1" &&
               !redis.cli("ZSCORE", "t:user:alice", a.public_id(conn)).empty() &&
               redis.cli("EXISTS", "t:instance:node-a") == "1";
    }));
    CHECK(a.registry.stats().reregistrations == reregistrations + 1);
    CHECK(redis.cli("HGET", "t:instance:node-a:conns", a.public_id(conn)) == "alice");
}

TEST_CASE("hub-wide counters across instances", "[redis][registry]") {
    RedisServer redis;
    Node a(redis, "node-a");
    Node b(redis, "node-b");
    REQUIRE(all_ready(redis, {&a, &b}));
    a.connect();
    a.connect();
    b.connect();
    REQUIRE(run_nodes({&a, &b}, [&] {
        const auto cluster = a.registry.cluster_stats();
        return cluster.known && cluster.connections == 3;
    }));
    const auto cluster = a.registry.cluster_stats();
    REQUIRE(cluster.instances.size() == 2);
    CHECK(cluster.instances[0] == std::make_pair(std::string("node-a"), std::uint64_t{2}));
    CHECK(cluster.instances[1] == std::make_pair(std::string("node-b"), std::uint64_t{1}));
}

TEST_CASE("a bad registry config is refused at construction", "[registry]") {
    asio::io_context io;
    ConnectionRegistryConfig config;
    config.url = "http://nope";
    CHECK_THROWS_AS(ConnectionRegistry(io.get_executor(), config), std::invalid_argument);
    config = {};
    config.heartbeat_interval = 10s;
    config.ttl = 15s;
    CHECK_THROWS_WITH(ConnectionRegistry(io.get_executor(), config), Catch::Contains("ttl"));
}

TEST_CASE("a leftover presence member nobody refreshes is removed by a heartbeat and its leave announced",
          "[redis][registry][presence]") {
    RedisServer redis;
    Node a(redis, "node-a");
    REQUIRE(all_ready(redis, {&a}));
    const auto watcher = a.connect("alice");
    a.transport.receive(watcher, R"({"type":"subscribe","channel":"room:1","id":1})");
    REQUIRE(run_nodes({&a}, [&] { return redis.cli("ZCARD", "t:presence:room:1") == "1"; }));
    // A member whose instance's index is gone (so no janitor will ever see
    // it), expired long ago: what a leave lost in an outage leaves behind.
    REQUIRE(redis.cli("ZADD", "t:presence:room:1", "1000", "ghost-7 casper") == "1");

    REQUIRE(run_nodes({&a}, [&] { return !a.frames(watcher, "leave").empty(); }));
    const auto leave = parse_frame(a.frames(watcher, "leave").front());
    CHECK(std::string(leave["connection"].GetString()) == "ghost-7");
    CHECK(std::string(leave["user"].GetString()) == "casper");
    CHECK(redis.cli("ZCARD", "t:presence:room:1") == "1");
    CHECK(redis.cli("ZSCORE", "t:presence:room:1", "ghost-7 casper").empty());
    CHECK(a.frames(watcher, "leave").size() == 1);
}

TEST_CASE("an instance restarted with the same id removes its earlier run's entries at once", "[redis][registry][crash]") {
    RedisServer redis;
    Node a(redis, "node-a");
    auto b = std::make_unique<Node>(redis, "node-b");
    REQUIRE(all_ready(redis, {&a, b.get()}));
    const auto watcher = a.connect("alice");
    a.transport.receive(watcher, R"({"type":"subscribe","channel":"room:1","id":1})");
    REQUIRE(run_nodes({&a, b.get()}, [&] { return !a.frames(watcher, "ack").empty(); }));
    const auto old_conn = b->connect("bob");
    b->transport.receive(old_conn, R"({"type":"subscribe","channel":"room:1","id":1})");
    const auto old_id = b->public_id(old_conn);
    REQUIRE(run_nodes({&a, b.get()}, [&] { return redis.cli("ZCARD", "t:presence:room:1") == "2"; }));

    b.reset();  // crash, and at once a new run with the same id: its heartbeat is still alive
    REQUIRE(redis.cli("EXISTS", "t:instance:node-b") == "1");
    Node b2(redis, "node-b");
    REQUIRE(run_nodes({&a, &b2}, [&] { return b2.registry.stats().reregistrations >= 1; }));
    REQUIRE(run_nodes({&a, &b2}, [&] { return !a.frames(watcher, "leave").empty(); }));
    CHECK(string_field(a.frames(watcher, "leave").front(), "connection") == old_id);
    CHECK(redis.cli("EXISTS", "t:conn:" + old_id) == "0");
    CHECK(redis.cli("ZSCORE", "t:user:bob", old_id).empty());
    CHECK(redis.cli("ZCARD", "t:presence:room:1") == "1");
    CHECK(redis.cli("EXISTS", "t:instance:node-b") == "1");  // the new run's heartbeat
    CHECK(redis.cli("SISMEMBER", "t:instances", "node-b") == "1");

    // The old id reaches nobody, even though the new run's first connection has the same transport number.
    const auto new_conn = b2.connect("bob");
    CHECK(b2.public_id(new_conn) != old_id);
    a.transport.receive(watcher, R"({"type":"send","to":")" + old_id + R"(","data":1,"id":"old"})");
    REQUIRE(run_nodes({&a, &b2}, [&] { return !a.frames(watcher, "error").empty(); }));
    CHECK(string_field(a.frames(watcher, "error").back(), "code") == "not_found");
    CHECK(b2.frames(new_conn, "direct").empty());
}

TEST_CASE("an instance the janitor took for dead comes back: its entries and its members' join return",
          "[redis][registry][outage]") {
    RedisServer redis;
    Node a(redis, "node-a");
    Node b(redis, "node-b");
    REQUIRE(all_ready(redis, {&a, &b}));
    const auto watcher = a.connect("alice");
    a.transport.receive(watcher, R"({"type":"subscribe","channel":"room:1","id":1})");
    REQUIRE(run_nodes({&a, &b}, [&] { return !a.frames(watcher, "ack").empty(); }));
    const auto member = b.connect("bob");
    b.transport.receive(member, R"({"type":"subscribe","channel":"room:1","id":1})");
    REQUIRE(run_nodes({&a, &b}, [&] {
        for (const auto& join : a.frames(watcher, "join")) {
            if (string_field(join, "connection") == b.public_id(member)) return true;
        }
        return false;
    }));
    const auto joins_before = a.frames(watcher, "join").size();

    // b stalls (its loop is not run) for longer than TTL + janitor: a's janitor removes it.
    REQUIRE(run_nodes({&a}, [&] { return a.registry.stats().instances_cleaned == 1; }));
    REQUIRE(run_nodes({&a}, [&] { return a.frames(watcher, "leave").size() == 1; }));
    CHECK(redis.cli("EXISTS", "t:conn:" + b.public_id(member)) == "0");

    // b runs again: its next heartbeat writes everything back and announces the join again.
    REQUIRE(run_nodes({&a, &b}, [&] {
        return a.frames(watcher, "join").size() > joins_before &&
               redis.cli("EXISTS", "t:conn:" + b.public_id(member)) == "1";
    }));
    CHECK(string_field(a.frames(watcher, "join").back(), "connection") == b.public_id(member));
    CHECK(string_field(a.frames(watcher, "join").back(), "user") == "bob");
    CHECK_FALSE(redis.cli("ZSCORE", "t:presence:room:1", b.public_id(member) + " bob").empty());
    CHECK_FALSE(redis.cli("ZSCORE", "t:user:bob", b.public_id(member)).empty());
    CHECK(redis.cli("SISMEMBER", "t:instances", "node-b") == "1");
}

TEST_CASE("once an instance's heartbeat expired, its connections are not found even before any janitor ran",
          "[redis][registry][crash]") {
    RedisServer redis;
    const Timing no_janitor{200ms, 1000ms, 600'000ms};  // the janitor never comes during the test
    Node a(redis, "node-a", no_janitor);
    Node b(redis, "node-b", no_janitor);
    REQUIRE(all_ready(redis, {&a, &b}));
    const auto asker = a.connect("alice");
    const auto gone = b.connect("bob");
    b.transport.receive(gone, R"({"type":"subscribe","channel":"room:1","id":1})");
    a.transport.receive(asker, R"({"type":"subscribe","channel":"room:1","id":1})");
    REQUIRE(run_nodes({&a, &b}, [&] { return redis.cli("ZCARD", "t:presence:room:1") == "2"; }));

    // b's loop stops (a crash, from Redis's side) until its heartbeat key expires.
    REQUIRE(run_nodes({&a}, [&] { return redis.cli("EXISTS", "t:instance:node-b") == "0"; }));
    CHECK(redis.cli("ZCARD", "t:presence:room:1") == "2");              // not cleaned: no janitor yet

    std::error_code looked_up = make_error_code(error::internal);
    bool done = false;
    a.registry.lookup(b.public_id(gone), [&](std::error_code ec, ConnectionRecord) {
        looked_up = ec;
        done = true;
    });
    REQUIRE(run_nodes({&a}, [&] { return done; }));
    CHECK(looked_up == make_error_code(error::not_found));

    a.transport.receive(asker, R"({"type":"send","to":"user:bob","data":1,"id":"u"})");
    a.transport.receive(asker, R"({"type":"presence","channel":"room:1","id":"p"})");
    REQUIRE(run_nodes({&a}, [&] { return !a.frames(asker, "error").empty() && a.frames(asker, "ack").size() >= 2; }));
    CHECK(string_field(a.frames(asker, "error").back(), "code") == "not_found");
    INFO("presence: " << redis.cli("ZRANGE", "t:presence:room:1", "0", "-1", "WITHSCORES") << " now "
                      << std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch()).count()
                      << " ack " << a.frames(asker, "ack").back());
    const auto members = parse_frame(a.frames(asker, "ack").back());
    REQUIRE(members.HasMember("members"));
    REQUIRE(members["members"].Size() == 1);  // bob's instance is dead
    CHECK(std::string(members["members"][0].GetString()) == a.public_id(asker));
}
