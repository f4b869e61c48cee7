// RedisConnection: the hiredis <-> Asio adapter, against a real redis-server
// (tests/support/redis_server.hpp), including the server dying, freezing and
// kicking us out, and the lifetime races of close and destruction.
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/strand.hpp>

#include "support/redis_server.hpp"
#include "support/run_until.hpp"
#include "wshub/detail/redis_connection.hpp"

using wshub::detail::RedisConnection;
using wshub::detail::RedisEndpoint;
using wshub::detail::redis_error;
using wshub::test::CliReply;
using wshub::test::copy_reply;
using wshub::test::RedisServer;
using wshub::test::RedisServerOptions;
using wshub::test::run_until;
using namespace std::chrono_literals;

namespace {

using ConnectionPtr = std::shared_ptr<RedisConnection>;

RedisEndpoint endpoint_of(const RedisServer& server) {
    RedisEndpoint endpoint;
    endpoint.port = server.port();
    endpoint.password = server.password();
    return endpoint;
}

// Runs the io_context until nothing is left to do: every wait of a closed or
// destroyed connection has completed.
bool drain(asio::io_context& io, std::chrono::milliseconds deadline = 20s) {
    const auto until = std::chrono::steady_clock::now() + deadline;
    while (std::chrono::steady_clock::now() < until) {
        io.restart();
        io.run_for(10ms);
        if (io.stopped()) return true;
    }
    return false;
}

std::error_code connect_and_wait(asio::io_context& io, const ConnectionPtr& connection) {
    std::optional<std::error_code> result;
    connection->connect([&](std::error_code ec) { result = ec; });
    REQUIRE_FALSE(result.has_value());  // never inside the call
    REQUIRE(run_until(io, [&] { return result.has_value(); }));
    return *result;
}

ConnectionPtr connect_ok(asio::io_context& io, const RedisEndpoint& endpoint) {
    auto connection = RedisConnection::create(io.get_executor(), endpoint);
    const std::error_code ec = connect_and_wait(io, connection);
    INFO("connect: " << ec.message() << " (" << connection->last_error() << ")");
    REQUIRE_FALSE(ec);
    REQUIRE(connection->connected());
    return connection;
}

struct Result {
    bool called = false;
    std::error_code ec;
    bool had_reply = false;
    CliReply reply;
};

RedisConnection::ReplyHandler record(Result& out) {
    return [&out](std::error_code ec, RedisConnection::Reply reply) {
        out.called = true;
        out.ec = ec;
        out.had_reply = reply != nullptr;
        out.reply = copy_reply(reply);
    };
}

Result run_command(asio::io_context& io, const ConnectionPtr& connection, const std::vector<std::string>& args) {
    Result out;
    connection->command(args, record(out));
    REQUIRE(run_until(io, [&] { return out.called; }));
    return out;
}

// A TCP listener whose connections the kernel completes and nobody answers.
class SilentListener {
public:
    SilentListener() {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof(addr);
        REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
        REQUIRE(::listen(fd_, 4096) == 0);
        REQUIRE(::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
        port_ = ntohs(addr.sin_port);
    }
    ~SilentListener() { ::close(fd_); }
    SilentListener(const SilentListener&) = delete;
    SilentListener& operator=(const SilentListener&) = delete;

    int port() const { return port_; }

    // Accepts and closes whatever waits in the backlog, so it never fills up.
    void drain() {
        for (;;) {
            const int client = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
            if (client < 0) return;
            ::close(client);
        }
    }

private:
    int fd_ = -1;
    int port_ = 0;
};

// Waits until the server counts `expected` clients (the checking connection
// included): every connection a test closed is really gone.
bool server_has_clients(const RedisServer& server, int expected) {
    const auto until = std::chrono::steady_clock::now() + 20s;
    while (std::chrono::steady_clock::now() < until) {
        if (server.info_field("clients", "connected_clients") == std::to_string(expected)) return true;
        std::this_thread::sleep_for(5ms);
    }
    return false;
}

std::vector<std::string> sorted(std::vector<std::string> v) {
    std::sort(v.begin(), v.end());
    return v;
}

// A push reply as (kind, channel, payload or count).
struct Push {
    std::string kind;
    std::string channel;
    std::string data;
};

Push to_push(RedisConnection::Reply reply) {
    const CliReply r = copy_reply(reply);
    REQUIRE(r.type == REDIS_REPLY_ARRAY);
    REQUIRE(r.elements.size() == 3);
    return {r.elements[0].str, r.elements[1].str, r.elements[2].str};
}

}  // namespace

// ---- commands ----------------------------------------------------------------

TEST_CASE("redis connection: SET and GET round-trip and handlers never run inside the call", "[redis_connection]") {
    RedisServer server;
    asio::io_context io;
    auto connection = connect_ok(io, endpoint_of(server));

    Result set;
    connection->command({"SET", "greeting", "hello"}, record(set));
    CHECK_FALSE(set.called);
    CHECK(connection->pending_commands() == 1);
    REQUIRE(run_until(io, [&] { return set.called; }));
    CHECK_FALSE(set.ec);
    CHECK(set.reply.type == REDIS_REPLY_STATUS);
    CHECK(set.reply.str == "OK");
    CHECK(connection->pending_commands() == 0);

    const Result get = run_command(io, connection, {"GET", "greeting"});
    CHECK(get.reply.type == REDIS_REPLY_STRING);
    CHECK(get.reply.str == "hello");
    CHECK(server.cli("GET", "greeting") == "hello");

    const Result missing = run_command(io, connection, {"GET", "missing"});
    CHECK_FALSE(missing.ec);
    CHECK(missing.reply.type == REDIS_REPLY_NIL);

    // An error reply is a reply, not a failure of the connection.
    const Result wrong = run_command(io, connection, {"INCR", "greeting"});
    CHECK_FALSE(wrong.ec);
    CHECK(wrong.reply.type == REDIS_REPLY_ERROR);
    CHECK(wrong.reply.str.rfind("ERR", 0) == 0);
    CHECK(connection->connected());

    Result empty;
    connection->command({}, record(empty));
    REQUIRE(run_until(io, [&] { return empty.called; }));
    CHECK(empty.ec == redis_error::bad_command);

    connection->close();
    CHECK_FALSE(connection->connected());
    Result after;
    connection->command({"PING"}, record(after));
    CHECK_FALSE(after.called);
    REQUIRE(run_until(io, [&] { return after.called; }));
    CHECK(after.ec == redis_error::not_connected);
    CHECK(drain(io));
}

TEST_CASE("redis connection: arguments are binary-safe up to a 1 MiB value", "[redis_connection]") {
    RedisServer server;
    asio::io_context io;
    auto connection = connect_ok(io, endpoint_of(server));

    const std::string key("k\0e\r\ny", 6);
    const std::string value("\0\r\n$3\r\nfoo\0*1\r\n", 16);
    CHECK(run_command(io, connection, {"SET", key, value}).reply.str == "OK");
    const Result get = run_command(io, connection, {"GET", key});
    CHECK(get.reply.str == value);
    CHECK(server.cli_argv({"GET", key}).str == value);

    std::string big(1 << 20, '\0');
    for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>((i * 7 + i / 251) & 0xff);
    CHECK(run_command(io, connection, {"SET", "big", big}).reply.str == "OK");
    CHECK(server.cli("STRLEN", "big") == "1048576");
    const Result big_get = run_command(io, connection, {"GET", "big"});
    CHECK(big_get.reply.str.size() == big.size());
    CHECK(big_get.reply.str == big);
}

TEST_CASE("redis connection: 1000 pipelined commands are answered in order", "[redis_connection]") {
    RedisServer server;
    asio::io_context io;
    auto connection = connect_ok(io, endpoint_of(server));

    std::vector<long long> lengths;
    std::vector<int> order;
    for (int i = 0; i < 1000; ++i) {
        connection->command({"RPUSH", "list", std::to_string(i)}, [&, i](std::error_code ec, RedisConnection::Reply r) {
            CHECK_FALSE(ec);
            order.push_back(i);
            lengths.push_back(r != nullptr && r->type == REDIS_REPLY_INTEGER ? r->integer : -1);
        });
    }
    CHECK(connection->pending_commands() == 1000);
    REQUIRE(run_until(io, [&] { return order.size() == 1000; }));
    for (int i = 0; i < 1000; ++i) {
        CHECK(order[static_cast<std::size_t>(i)] == i);
        CHECK(lengths[static_cast<std::size_t>(i)] == i + 1);
    }
    const auto stored = server.cli_list("LRANGE", "list", "0", "-1");
    REQUIRE(stored.size() == 1000);
    CHECK(stored.front() == "0");
    CHECK(stored.back() == "999");
}

// ---- connecting ----------------------------------------------------------------

TEST_CASE("redis connection: AUTH with the right password succeeds and a wrong or missing one fails",
          "[redis_connection]") {
    RedisServer server({"--requirepass", "s3cret pass"});
    asio::io_context io;

    RedisEndpoint endpoint = endpoint_of(server);
    auto good = connect_ok(io, endpoint);
    CHECK(run_command(io, good, {"SET", "k", "v"}).reply.str == "OK");
    CHECK(run_command(io, good, {"GET", "k"}).reply.str == "v");

    bool disconnect_called = false;
    for (const std::string password : {"wrong", ""}) {
        endpoint.password = password;
        auto bad = RedisConnection::create(io.get_executor(), endpoint);
        bad->set_disconnect_handler([&](std::error_code) { disconnect_called = true; });
        const std::error_code ec = connect_and_wait(io, bad);
        INFO("password '" << password << "': " << ec.message() << " / " << bad->last_error());
        CHECK(ec == redis_error::auth_failed);
        CHECK_FALSE(bad->connected());
        CHECK_FALSE(bad->last_error().empty());  // the server's text, for logs
    }
    CHECK_FALSE(disconnect_called);  // a failed connect is reported by connect's done only

    // AUTH and SELECT go out together.
    endpoint.password = "s3cret pass";
    endpoint.db = 2;
    auto both = connect_ok(io, endpoint);
    CHECK(run_command(io, both, {"SET", "in2", "x"}).reply.str == "OK");
    CHECK(server.info_field("keyspace", "db2").rfind("keys=1,", 0) == 0);
}

TEST_CASE("redis connection: SELECT the configured db and fail on an out-of-range db", "[redis_connection]") {
    RedisServer server;
    asio::io_context io;
    RedisEndpoint endpoint = endpoint_of(server);
    endpoint.db = 5;
    auto connection = connect_ok(io, endpoint);
    CHECK(run_command(io, connection, {"SET", "in5", "x"}).reply.str == "OK");
    CHECK(server.info_field("keyspace", "db5").rfind("keys=1,", 0) == 0);
    CHECK(server.info_field("keyspace", "db0").empty());

    endpoint.db = 99;  // redis-server has 16
    auto bad = RedisConnection::create(io.get_executor(), endpoint);
    CHECK(connect_and_wait(io, bad) == redis_error::select_failed);
    CHECK(bad->last_error().find("out of range") != std::string::npos);
}

TEST_CASE("redis connection: over a Unix socket", "[redis_connection]") {
    RedisServer server(RedisServerOptions{{}, true});
    asio::io_context io;
    RedisEndpoint endpoint;
    endpoint.unix_path = server.unix_socket_path();
    endpoint.port = 1;  // ignored: nothing listens there
    auto connection = connect_ok(io, endpoint);
    CHECK(run_command(io, connection, {"SET", "via", "unix"}).reply.str == "OK");
    CHECK(server.cli("GET", "via") == "unix");
    const Result info = run_command(io, connection, {"CLIENT", "INFO"});
    CHECK(info.reply.str.find(server.unix_socket_path()) != std::string::npos);
}

TEST_CASE("redis connection: nobody listening gives an error and no hang", "[redis_connection]") {
    asio::io_context io;
    RedisEndpoint endpoint;
    endpoint.port = RedisServer::free_port();
    auto tcp = RedisConnection::create(io.get_executor(), endpoint);
    const std::error_code ec = connect_and_wait(io, tcp);
    INFO(ec.message() << " / " << tcp->last_error());
    CHECK(ec == std::errc::connection_refused);
    CHECK_FALSE(tcp->connected());

    RedisEndpoint unix_endpoint;
    unix_endpoint.unix_path = "/nonexistent/wshub-test.sock";
    auto unix_socket = RedisConnection::create(io.get_executor(), unix_endpoint);
    const std::error_code unix_ec = connect_and_wait(io, unix_socket);
    INFO(unix_ec.message() << " / " << unix_socket->last_error());
    CHECK(unix_ec == std::errc::no_such_file_or_directory);

    // One connect per object.
    std::optional<std::error_code> again;
    tcp->connect([&](std::error_code e) { again = e; });
    REQUIRE(run_until(io, [&] { return again.has_value(); }));
    CHECK(*again == redis_error::connect_called_twice);
    CHECK(drain(io));
}

TEST_CASE("redis connection: a server that accepts and never answers times the connect out", "[redis_connection]") {
    SilentListener silent;
    asio::io_context io;
    RedisEndpoint endpoint;
    endpoint.port = silent.port();
    endpoint.connect_timeout = 150ms;
    for (const std::string password : {"", "secret"}) {  // the PING phase, then the AUTH phase
        endpoint.password = password;
        auto connection = RedisConnection::create(io.get_executor(), endpoint);
        bool disconnect_called = false;
        connection->set_disconnect_handler([&](std::error_code) { disconnect_called = true; });
        const auto start = std::chrono::steady_clock::now();
        const std::error_code ec = connect_and_wait(io, connection);
        CHECK(ec == redis_error::connect_timeout);
        CHECK(std::chrono::steady_clock::now() - start >= 140ms);
        CHECK_FALSE(connection->connected());
        CHECK_FALSE(disconnect_called);
    }
    CHECK(drain(io));

    // A SIGSTOPped redis-server is the same to a client: the kernel still accepts.
    RedisServer server;
    server.stop_process();
    RedisEndpoint frozen = endpoint_of(server);
    frozen.connect_timeout = 150ms;
    auto connection = RedisConnection::create(io.get_executor(), frozen);
    CHECK(connect_and_wait(io, connection) == redis_error::connect_timeout);
    server.cont_process();
    auto later = connect_ok(io, endpoint_of(server));
    CHECK(run_command(io, later, {"PING"}).reply.str == "PONG");
}

// ---- losing the server -----------------------------------------------------------

TEST_CASE("redis connection: a frozen server (SIGSTOP) times commands out and closes the connection",
          "[redis_connection]") {
    RedisServer server;
    asio::io_context io;
    RedisEndpoint endpoint = endpoint_of(server);
    endpoint.command_timeout = 300ms;
    auto connection = connect_ok(io, endpoint);
    std::vector<std::string> events;
    std::optional<std::error_code> lost;
    connection->set_disconnect_handler([&](std::error_code ec) {
        events.push_back("disconnect");
        lost = ec;
    });

    server.stop_process();
    std::vector<std::error_code> errors;
    for (int i = 0; i < 5; ++i) {
        connection->command({"SET", "k" + std::to_string(i), "v"},
                            [&, i](std::error_code ec, RedisConnection::Reply r) {
                                CHECK(r == nullptr);
                                errors.push_back(ec);
                                events.push_back("command " + std::to_string(i));
                            });
    }
    const auto start = std::chrono::steady_clock::now();
    REQUIRE(run_until(io, [&] { return lost.has_value(); }));
    CHECK(std::chrono::steady_clock::now() - start >= 280ms);
    CHECK(*lost == redis_error::command_timeout);
    REQUIRE(errors.size() == 5);
    for (const auto& ec : errors) CHECK(ec == redis_error::command_timeout);
    CHECK(events == std::vector<std::string>{"command 0", "command 1", "command 2", "command 3", "command 4",
                                             "disconnect"});
    CHECK_FALSE(connection->connected());
    CHECK(connection->pending_commands() == 0);

    server.cont_process();
    auto fresh = connect_ok(io, endpoint);
    CHECK(run_command(io, fresh, {"PING"}).reply.str == "PONG");
}

TEST_CASE("redis connection: a SUBSCRIBE unconfirmed by a frozen server closes the connection", "[redis_connection]") {
    RedisServer server;
    asio::io_context io;
    RedisEndpoint endpoint = endpoint_of(server);
    endpoint.command_timeout = 300ms;
    auto connection = connect_ok(io, endpoint);
    std::optional<std::error_code> lost;
    connection->set_disconnect_handler([&](std::error_code ec) { lost = ec; });
    int pushes = 0;
    connection->set_push_handler([&](RedisConnection::Reply) { ++pushes; });

    connection->subscribe({"a"});
    REQUIRE(run_until(io, [&] { return pushes == 1; }));  // confirmed: no timeout pending now
    server.stop_process();
    connection->subscribe({"b", "c"});
    REQUIRE(run_until(io, [&] { return lost.has_value(); }));
    CHECK(*lost == redis_error::command_timeout);
    server.cont_process();
}

TEST_CASE("redis connection: kill -9 of the server runs the disconnect handler after pending commands",
          "[redis_connection]") {
    RedisServer server;
    asio::io_context io;
    auto connection = connect_ok(io, endpoint_of(server));
    std::vector<std::string> events;
    std::optional<std::error_code> lost;
    connection->set_disconnect_handler([&](std::error_code ec) {
        events.push_back("disconnect");
        lost = ec;
    });
    Result blocked;
    connection->command({"BLPOP", "nothing", "0"}, [&](std::error_code ec, RedisConnection::Reply r) {
        record(blocked)(ec, r);
        events.push_back("blpop");
    });
    // BLPOP is on the server (blocked) once CLIENT LIST shows it.
    REQUIRE(run_until(io, [&] { return server.cli("CLIENT", "LIST").find("cmd=blpop") != std::string::npos; }));

    server.kill9();
    REQUIRE(run_until(io, [&] { return lost.has_value(); }));
    INFO(lost->message() << " / " << connection->last_error());
    CHECK(*lost);
    CHECK(*lost != asio::error::operation_aborted);
    CHECK(blocked.called);
    CHECK(blocked.ec == *lost);
    CHECK_FALSE(blocked.had_reply);
    CHECK(events == std::vector<std::string>{"blpop", "disconnect"});
    CHECK_FALSE(connection->connected());
    connection->close();  // closing what is already lost is a no-op
    CHECK(drain(io));

    server.restart();
    auto again = connect_ok(io, endpoint_of(server));
    CHECK(run_command(io, again, {"PING"}).reply.str == "PONG");
}

TEST_CASE("redis connection: CLIENT KILL TYPE pubsub ends a subscribed connection", "[redis_connection]") {
    RedisServer server;
    asio::io_context io;
    auto subscriber = connect_ok(io, endpoint_of(server));
    auto plain = connect_ok(io, endpoint_of(server));
    std::optional<std::error_code> lost;
    subscriber->set_disconnect_handler([&](std::error_code ec) { lost = ec; });
    bool plain_lost = false;
    plain->set_disconnect_handler([&](std::error_code) { plain_lost = true; });
    int confirmations = 0;
    subscriber->set_push_handler([&](RedisConnection::Reply) { ++confirmations; });
    subscriber->subscribe({"news"});
    REQUIRE(run_until(io, [&] { return confirmations == 1; }));

    CHECK(server.cli("CLIENT", "KILL", "TYPE", "pubsub") == "1");
    REQUIRE(run_until(io, [&] { return lost.has_value(); }));
    CHECK(*lost == redis_error::closed_by_server);
    CHECK_FALSE(subscriber->connected());
    CHECK(run_command(io, plain, {"PING"}).reply.str == "PONG");
    CHECK_FALSE(plain_lost);

    // A disconnect handler set after the loss still hears of it (posted).
    std::optional<std::error_code> late;
    subscriber->set_disconnect_handler([&](std::error_code ec) { late = ec; });
    CHECK_FALSE(late.has_value());
    REQUIRE(run_until(io, [&] { return late.has_value(); }));
    CHECK(*late == redis_error::closed_by_server);
}

TEST_CASE("redis connection: a write to a peer that has gone raises no SIGPIPE", "[redis_connection]") {
    // A Unix socket peer that accepts and closes before our first write: the
    // write fails with EPIPE, which would kill the process by SIGPIPE.
    std::string dir = (std::filesystem::temp_directory_path() / "wshub-pipe-XXXXXX").string();
    REQUIRE(mkdtemp(dir.data()) != nullptr);
    const std::string path = dir + "/peer.sock";
    const int listener = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path.c_str());
    REQUIRE(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
    REQUIRE(::listen(listener, 16) == 0);

    asio::io_context io;
    RedisEndpoint endpoint;
    endpoint.unix_path = path;
    for (int i = 0; i < 3; ++i) {
        auto connection = RedisConnection::create(io.get_executor(), endpoint);
        std::optional<std::error_code> result;
        connection->connect([&](std::error_code ec) { result = ec; });
        const int peer = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);  // already in the backlog
        REQUIRE(peer >= 0);
        ::close(peer);
        REQUIRE(run_until(io, [&] { return result.has_value(); }));
        INFO(result->message() << " / " << connection->last_error());
        CHECK((*result == std::errc::broken_pipe || *result == std::errc::connection_reset ||
               *result == redis_error::closed_by_server));
    }
    ::close(listener);
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
}

// ---- subscriber mode -----------------------------------------------------------------

TEST_CASE("redis connection: one SUBSCRIBE for 3 channels then messages and UNSUBSCRIBE reach the push handler",
          "[redis_connection]") {
    RedisServer server;
    asio::io_context io;
    auto subscriber = connect_ok(io, endpoint_of(server));
    auto publisher = connect_ok(io, endpoint_of(server));
    std::vector<Push> pushes;
    subscriber->set_push_handler([&](RedisConnection::Reply reply) { pushes.push_back(to_push(reply)); });

    subscriber->subscribe({"alpha", "beta", std::string("gam\0ma", 6)});
    subscriber->subscribe({});  // nothing to send
    REQUIRE(run_until(io, [&] { return pushes.size() == 3; }));
    CHECK(pushes[0].kind == "subscribe");
    CHECK(pushes[0].channel == "alpha");
    CHECK(pushes[0].data == "1");
    CHECK(pushes[1].channel == "beta");
    CHECK(pushes[1].data == "2");
    CHECK(pushes[2].channel == std::string("gam\0ma", 6));
    CHECK(pushes[2].data == "3");
    CHECK(server.info_field("commandstats", "cmdstat_subscribe").rfind("calls=1,", 0) == 0);
    CHECK(sorted(server.cli_list("PUBSUB", "CHANNELS")) ==
          std::vector<std::string>{"alpha", "beta", std::string("gam\0ma", 6)});

    // Commands are refused in subscriber mode: hiredis 0.14 would misroute their replies.
    Result refused;
    subscriber->command({"GET", "x"}, record(refused));
    REQUIRE(run_until(io, [&] { return refused.called; }));
    CHECK(refused.ec == redis_error::in_subscriber_mode);
    CHECK(subscriber->connected());

    const std::string payload("bin\0ary\r\n", 9);
    for (const std::string channel : {"alpha", "beta", "nobody"}) {
        CHECK(run_command(io, publisher, {"PUBLISH", channel, payload + channel}).reply.integer ==
              (channel == "nobody" ? 0 : 1));
    }
    REQUIRE(run_until(io, [&] { return pushes.size() == 5; }));
    CHECK(pushes[3].kind == "message");
    CHECK(pushes[3].channel == "alpha");
    CHECK(pushes[3].data == payload + "alpha");
    CHECK(pushes[4].channel == "beta");
    CHECK(pushes[4].data == payload + "beta");

    subscriber->unsubscribe({"alpha", "beta"});
    subscriber->unsubscribe({});  // nothing to send: an UNSUBSCRIBE without channels can crash hiredis 0.14
    REQUIRE(run_until(io, [&] { return pushes.size() == 7; }));
    CHECK(pushes[5].kind == "unsubscribe");
    CHECK(pushes[5].channel == "alpha");
    CHECK(pushes[5].data == "2");
    CHECK(pushes[6].channel == "beta");
    CHECK(pushes[6].data == "1");
    CHECK(server.cli_list("PUBSUB", "CHANNELS") == std::vector<std::string>{std::string("gam\0ma", 6)});

    // Nothing more for alpha: a message to it and then to the remaining channel
    // arrive in publish order, so only the second shows up.
    run_command(io, publisher, {"PUBLISH", "alpha", "late"});
    run_command(io, publisher, {"PUBLISH", std::string("gam\0ma", 6), "last"});
    REQUIRE(run_until(io, [&] { return pushes.size() == 8; }));
    CHECK(pushes[7].kind == "message");
    CHECK(pushes[7].data == "last");

    // The last UNSUBSCRIBE leaves subscriber mode: commands work again.
    subscriber->unsubscribe({std::string("gam\0ma", 6)});
    REQUIRE(run_until(io, [&] { return pushes.size() == 9; }));
    CHECK(pushes[8].kind == "unsubscribe");
    CHECK(pushes[8].data == "0");
    CHECK(run_command(io, subscriber, {"PING"}).reply.str == "PONG");
}

// ---- lifetimes (200 iterations each) --------------------------------------------------

TEST_CASE("redis connection: close right after connect in every phase of connecting", "[redis_connection][lifetime]") {
    RedisServer server;
    asio::io_context io;
    for (int i = 0; i < 200; ++i) {
        auto connection = RedisConnection::create(io.get_executor(), endpoint_of(server));
        bool disconnect_called = false;
        connection->set_disconnect_handler([&](std::error_code) { disconnect_called = true; });
        std::optional<std::error_code> result;
        connection->connect([&](std::error_code ec) { result = ec; });
        // 0: TCP connect pending; 1: PING sent; 2, 3: PING answered, done posted but not run yet.
        for (int k = 0; k < i % 4; ++k) io.run_one_for(2s);
        connection->close();
        connection->close();
        CHECK_FALSE(connection->connected());
        REQUIRE(run_until(io, [&] { return result.has_value(); }));
        // A connect whose PING answer was already handled has completed: then the
        // close is an ordinary one.
        if (*result) CHECK(*result == asio::error::operation_aborted);
        if (!*result) REQUIRE(run_until(io, [&] { return disconnect_called; }));
        if (*result) CHECK_FALSE(disconnect_called);
    }
    CHECK(drain(io));
    CHECK(server_has_clients(server, 1));  // every fd closed
}

TEST_CASE("redis connection: close with 50 commands pending fails them in order then disconnects",
          "[redis_connection][lifetime]") {
    RedisServer server;
    asio::io_context io;
    for (int i = 0; i < 200; ++i) {
        auto connection = connect_ok(io, endpoint_of(server));
        std::vector<int> order;
        int answered = 0;
        int aborted = 0;
        int disconnects = 0;
        bool disconnect_after_all = false;
        connection->set_disconnect_handler([&](std::error_code ec) {
            CHECK(ec == asio::error::operation_aborted);
            ++disconnects;
            disconnect_after_all = order.size() == 50;
        });
        for (int k = 0; k < 50; ++k) {
            connection->command({"INCR", "n"}, [&, k](std::error_code ec, RedisConnection::Reply r) {
                order.push_back(k);
                if (ec) {
                    CHECK(ec == asio::error::operation_aborted);
                    CHECK(r == nullptr);
                    ++aborted;
                } else {
                    CHECK(aborted == 0);  // answers first, then failures, never mixed
                    ++answered;
                }
            });
        }
        for (int k = 0; k < i % 4; ++k) io.poll_one();
        connection->close();
        REQUIRE(run_until(io, [&] { return disconnects == 1; }));
        CHECK(answered + aborted == 50);
        CHECK(disconnect_after_all);
        for (int k = 0; k < static_cast<int>(order.size()); ++k) CHECK(order[static_cast<std::size_t>(k)] == k);
    }
    CHECK(drain(io));
    CHECK(server_has_clients(server, 1));
}

TEST_CASE("redis connection: dropping the last shared_ptr while connecting calls nothing and frees everything",
          "[redis_connection][lifetime]") {
    SilentListener silent;
    RedisServer server;
    asio::io_context io;
    int calls = 0;
    for (int i = 0; i < 200; ++i) {
        RedisEndpoint endpoint = i % 2 == 0 ? endpoint_of(server) : RedisEndpoint{};
        if (i % 2 == 1) endpoint.port = silent.port();
        endpoint.connect_timeout = 5s;  // pending all along
        auto connection = RedisConnection::create(io.get_executor(), endpoint);
        connection->set_disconnect_handler([&](std::error_code) { ++calls; });
        connection->connect([&](std::error_code) { ++calls; });
        // Real server: TCP connect pending, PING sent, or PING answered (done posted).
        // Silent one: TCP connect pending or PING sent; nothing comes after that.
        const int steps = i % 2 == 0 ? (i / 2) % 3 : (i / 2) % 2;
        for (int k = 0; k < steps; ++k) io.run_one_for(2s);
        std::weak_ptr<RedisConnection> weak = connection;
        if (i % 2 == 1) silent.drain();
        connection.reset();
        CHECK(weak.expired());  // no wait keeps it alive
        REQUIRE(drain(io));      // and nothing is left behind in the io_context
    }
    CHECK(calls <= 200 / 2 / 3 + 1);  // only a done already posted before the drop runs
    CHECK(server_has_clients(server, 1));
}

TEST_CASE("redis connection: close from inside a reply handler and from inside the disconnect handler",
          "[redis_connection][lifetime]") {
    RedisServer server;
    asio::io_context io;
    for (int i = 0; i < 200; ++i) {
        auto connection = connect_ok(io, endpoint_of(server));
        RedisConnection* raw = connection.get();
        int disconnects = 0;
        connection->set_disconnect_handler([&](std::error_code ec) {
            CHECK(ec == asio::error::operation_aborted);
            ++disconnects;
            raw->close();  // closing again, from inside: nothing happens
            if (i % 2 == 0) connection.reset();  // and the last reference may go here
        });
        std::vector<std::error_code> results;
        for (int k = 0; k < 5; ++k) {
            connection->command({"PING"}, [&, k](std::error_code ec, RedisConnection::Reply) {
                results.push_back(ec);
                if (k == 0) {
                    CHECK_FALSE(ec);
                    raw->close();
                    raw->close();
                    CHECK_FALSE(raw->connected());
                }
            });
        }
        REQUIRE(run_until(io, [&] { return disconnects == 1; }));
        REQUIRE(results.size() == 5);
        for (int k = 1; k < 5; ++k) CHECK(results[static_cast<std::size_t>(k)] == asio::error::operation_aborted);
    }
    CHECK(drain(io));

    // Lost (not closed): QUIT makes the server hang up; close() and the drop
    // inside the disconnect handler.
    for (int i = 0; i < 200; ++i) {
        auto connection = connect_ok(io, endpoint_of(server));
        RedisConnection* raw = connection.get();
        int disconnects = 0;
        connection->set_disconnect_handler([&](std::error_code ec) {
            CHECK(ec == redis_error::closed_by_server);
            ++disconnects;
            raw->close();
            connection.reset();
        });
        connection->command({"QUIT"}, [](std::error_code, RedisConnection::Reply) {});
        REQUIRE(run_until(io, [&] { return disconnects == 1; }));
        CHECK_FALSE(connection);
    }
    CHECK(drain(io));
    CHECK(server_has_clients(server, 1));
}

TEST_CASE("redis connection: close from inside the push handler and drop the last reference inside a reply handler",
          "[redis_connection][lifetime]") {
    RedisServer server;
    asio::io_context io;
    for (int i = 0; i < 200; ++i) {
        auto connection = connect_ok(io, endpoint_of(server));
        RedisConnection* raw = connection.get();
        int disconnects = 0;
        int pushes = 0;
        connection->set_disconnect_handler([&](std::error_code) { ++disconnects; });
        connection->set_push_handler([&](RedisConnection::Reply) {
            ++pushes;
            raw->set_push_handler([&](RedisConnection::Reply) { ++pushes; });  // replaces itself while running
            raw->close();
        });
        connection->subscribe({"x", "y", "z"});
        REQUIRE(run_until(io, [&] { return disconnects == 1; }));
        CHECK(pushes == 1);  // nothing after close, not even the rest of the same read
    }

    for (int i = 0; i < 200; ++i) {
        auto connection = connect_ok(io, endpoint_of(server));
        std::weak_ptr<RedisConnection> weak = connection;
        int called = 0;
        for (int k = 0; k < 10; ++k) {
            connection->command({"PING"}, [&](std::error_code, RedisConnection::Reply) {
                ++called;
                connection.reset();  // the last reference, while hiredis is on the stack
            });
        }
        REQUIRE(run_until(io, [&] { return weak.expired(); }));
        CHECK(called == 1);  // none after the drop, not even the rest of the same read
    }
    CHECK(drain(io));
    CHECK(server_has_clients(server, 1));
}

TEST_CASE("redis connection: dropping the last shared_ptr while reads and commands are pending",
          "[redis_connection][lifetime]") {
    RedisServer server;
    asio::io_context io;
    int calls = 0;
    for (int i = 0; i < 200; ++i) {
        auto connection = connect_ok(io, endpoint_of(server));
        connection->set_disconnect_handler([&](std::error_code) { ++calls; });
        for (int k = 0; k < i % 3; ++k) {
            connection->command({"BLPOP", "nothing", "0"}, [&](std::error_code, RedisConnection::Reply) { ++calls; });
        }
        if (i % 5 == 0) io.poll_one();
        std::weak_ptr<RedisConnection> weak = connection;
        connection.reset();
        CHECK(weak.expired());
        REQUIRE(drain(io));
    }
    CHECK(calls == 0);  // destruction calls no handler
    CHECK(server_has_clients(server, 1));
}

// ---- threads ---------------------------------------------------------------------------

TEST_CASE("redis connection: two threads run the io_context and the connections live on a strand",
          "[redis_connection][threads]") {
    RedisServer server;
    asio::io_context io;
    auto strand = asio::make_strand(io);
    auto work = asio::make_work_guard(io);
    std::thread runner1([&] { io.run(); });
    std::thread runner2([&] { io.run(); });

    // Everything below is touched on the strand only; the test thread waits on the promise.
    struct State {
        ConnectionPtr subscriber, publisher, dropped;
        int replies = 0;
        int messages = 0;
        int connected = 0;
        int disconnects = 0;
        bool failed = false;
    };
    auto state = std::make_shared<State>();
    std::promise<std::string> finished;
    const RedisEndpoint endpoint = endpoint_of(server);

    asio::post(strand, [&, state] {
        state->subscriber = RedisConnection::create(strand, endpoint);
        state->publisher = RedisConnection::create(strand, endpoint);
        state->dropped = RedisConnection::create(strand, endpoint);

        auto maybe_finish = [&, state] {
            if (state->replies == 1000 && state->messages == 200 && state->disconnects == 0) {
                state->subscriber->close();
                state->publisher->close();
            }
        };
        state->subscriber->set_push_handler([&, state, maybe_finish](RedisConnection::Reply reply) {
            const CliReply r = copy_reply(reply);
            if (r.elements.size() == 3 && r.elements[0].str == "subscribe") {
                for (int i = 0; i < 200; ++i) {
                    state->publisher->command({"PUBLISH", "t", std::to_string(i)},
                                              [](std::error_code, RedisConnection::Reply) {});
                }
            } else if (r.elements.size() == 3 && r.elements[0].str == "message") {
                if (r.elements[2].str != std::to_string(state->messages)) state->failed = true;
                ++state->messages;
                maybe_finish();
            }
        });
        for (auto* c : {&state->subscriber, &state->publisher}) {
            (*c)->set_disconnect_handler([&, state](std::error_code ec) {
                if (ec != asio::error::operation_aborted) state->failed = true;
                if (++state->disconnects == 2) {
                    state->subscriber.reset();
                    state->publisher.reset();
                    finished.set_value(state->failed ? "failed" : "ok");
                }
            });
        }
        auto on_connected = [&, state, maybe_finish](std::error_code ec) {
            if (ec) {
                finished.set_value("connect: " + ec.message());
                return;
            }
            if (++state->connected < 2) return;
            state->subscriber->subscribe({"t"});
            for (int i = 0; i < 1000; ++i) {
                state->publisher->command({"INCR", "n"}, [&, state, i, maybe_finish](std::error_code e,
                                                                                    RedisConnection::Reply r) {
                    if (e || r == nullptr || r->integer != i + 1) state->failed = true;
                    ++state->replies;
                    maybe_finish();
                });
            }
        };
        state->subscriber->connect(on_connected);
        state->publisher->connect(on_connected);
        // Another one dropped on the strand while its read is pending.
        state->dropped->connect([state](std::error_code) {
            state->dropped->command({"BLPOP", "nothing", "0"}, [](std::error_code, RedisConnection::Reply) {});
            state->dropped.reset();
        });
    });

    auto result = finished.get_future();
    const bool ready = result.wait_for(60s) == std::future_status::ready;
    work.reset();
    if (!ready) io.stop();
    runner1.join();
    runner2.join();
    REQUIRE(ready);
    CHECK(result.get() == "ok");
    CHECK(server.cli("GET", "n") == "1000");
}
