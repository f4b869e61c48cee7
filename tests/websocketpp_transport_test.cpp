// WebsocketppTransport end to end: a Hub on real sockets, real WebSocket
// clients (websocketpp's client, and a raw socket that misbehaves).
#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <map>
#include <mutex>
#include <stdexcept>
#include <thread>

#include <asio/write.hpp>

#include "support/json_reader.hpp"
#include "support/raw_ws_client.hpp"
#include "support/ws_clients.hpp"
#include "support/ws_server.hpp"

using namespace wshub;
using namespace wshub::test;

namespace {
HubConfig quiet_hub() {
    HubConfig config;
    config.instance_id = "e2e";
    config.publish_rate_per_second = 0;
    return config;
}
}  // namespace

TEST_CASE("welcome, subscribe, publish to subscribers only, unsubscribe", "[transport][e2e]") {
    WsServer<> server(quiet_hub());
    server.start();
    TestClients clients;
    std::vector<std::shared_ptr<ClientConn>> subs;
    for (int i = 0; i < 5; ++i) {
        subs.push_back(clients.open(server.port()));
        REQUIRE(subs.back()->wait_connected() == ClientConn::State::open);
        const auto welcome = subs.back()->next();
        REQUIRE(welcome);
        CHECK(frame_type(*welcome) == "welcome");
        CHECK(string_field(*welcome, "instance") == "e2e");
        subs.back()->send(R"({"type":"subscribe","channel":"room","id":1})");
        REQUIRE(subs.back()->next_of_type("ack"));
    }
    auto outsider = clients.open(server.port());
    REQUIRE(outsider->wait_connected() == ClientConn::State::open);
    REQUIRE(outsider->next_of_type("welcome"));

    const auto prepared_before = server.transport.prepared_messages();
    subs[0]->send(R"({"type":"publish","channel":"room","data":{"n":1}})");
    for (auto& s : subs) {
        const auto message = s->next_of_type("message");
        REQUIRE(message);
        CHECK(*message == R"({"type":"message","channel":"room","data":{"n":1}})");
    }
    // One preparation for five recipients.
    CHECK(server.transport.prepared_messages() == prepared_before + 1);

    subs[1]->send(R"({"type":"unsubscribe","channel":"room","id":"u"})");
    REQUIRE(subs[1]->next_of_type("ack"));
    subs[0]->send(R"({"type":"publish","channel":"room","data":2,"id":"p"})");
    REQUIRE(subs[0]->next_of_type("ack"));
    REQUIRE(subs[2]->next_of_type("message"));
    CHECK_FALSE(subs[1]->next_of_type("message", std::chrono::milliseconds(300)));
    CHECK_FALSE(outsider->next_of_type("message", std::chrono::milliseconds(10)));
}

namespace {

// Refuses subscriptions to "vip:*" for anyone but user "alice", and throws
// (an application bug) on channel "boom", to reach `internal`.
struct VipAuthorizer {
    bool can_subscribe(const ConnectionInfo& who, std::string_view channel) const {
        if (channel == "boom") throw std::runtime_error("authorizer bug");
        return channel.rfind("vip:", 0) != 0 || who.user_id == "alice";
    }
    bool can_publish(const ConnectionInfo&, std::string_view) const { return true; }
    bool can_send(const ConnectionInfo&, std::string_view) const { return true; }
};
struct VipPolicies : DefaultPolicies {
    using authorizer = VipAuthorizer;
};

// A PubSub that is down: every publish must answer `unavailable`.
struct DownPubSub {
    explicit DownPubSub(asio::any_io_executor executor) : executor_(std::move(executor)) {}
    void set_handlers(PubSubHandlers) {}
    void subscribe(const std::string&, Completion done) { done_later(std::move(done)); }
    void unsubscribe(const std::string&, Completion done) { done_later(std::move(done)); }
    void publish(const std::string&, std::string, Completion done) { done_later(std::move(done)); }
    PubSubState state() const { return PubSubState::down; }
    void done_later(Completion done) {
        asio::post(executor_, [done = std::move(done)] { done(make_error_code(error::unavailable)); });
    }
    asio::any_io_executor executor_;
};

std::string code_of(ClientConn& c) {
    const auto error = c.next_of_type("error");
    return error ? string_field(*error, "code") : std::string("(no error frame)");
}

}  // namespace

TEST_CASE("every error code a client can provoke, over real sockets", "[transport][e2e]") {
    HubConfig config = quiet_hub();
    config.max_subscriptions_per_connection = 2;
    config.publish_rate_per_second = 0.001;
    config.publish_burst = 1;
    WsServer<LocalPubSub, VipPolicies> server(config);
    server.transport.set_auth_hook([](const HttpRequest& request) {
        ConnectionInfo info;
        info.user_id = request.query_param("user");
        return AuthDecision::accepted(info);
    });
    server.start();
    TestClients clients;
    auto bob = clients.open(server.port(), "/ws?user=bob");
    auto alice = clients.open(server.port(), "/ws?user=alice");
    REQUIRE(bob->wait_connected() == ClientConn::State::open);
    REQUIRE(alice->wait_connected() == ClientConn::State::open);

    bob->send("{nope");
    CHECK(code_of(*bob) == "bad_request");
    bob->send_binary(R"({"type":"subscribe","channel":"a"})");
    CHECK(code_of(*bob) == "bad_request");
    bob->send(R"({"type":"subscribe","channel":"no spaces"})");
    CHECK(code_of(*bob) == "invalid_channel");
    bob->send(R"({"type":"unsubscribe","channel":"never"})");
    CHECK(code_of(*bob) == "not_subscribed");
    bob->send(R"({"type":"subscribe","channel":"vip:lounge"})");
    CHECK(code_of(*bob) == "forbidden");  // the auth hook's user id reached the authorizer
    alice->send(R"({"type":"subscribe","channel":"vip:lounge","id":1})");
    CHECK(alice->next_of_type("ack"));
    bob->send(R"({"type":"subscribe","channel":"boom"})");
    CHECK(code_of(*bob) == "internal");
    bob->send(R"({"type":"subscribe","channel":"a"})");
    bob->send(R"({"type":"subscribe","channel":"b"})");
    bob->send(R"({"type":"subscribe","channel":"c"})");
    CHECK(code_of(*bob) == "too_many_subscriptions");
    bob->send(R"({"type":"send","to":"e2e-999","data":1})");
    CHECK(code_of(*bob) == "not_found");
    bob->send(R"({"type":"publish","channel":"a","data":1})");  // the one token of the burst
    bob->send(R"({"type":"publish","channel":"a","data":2})");
    CHECK(code_of(*bob) == "rate_limited");
    CHECK(bob->state() == ClientConn::State::open);  // errors leave the connection open
}

TEST_CASE("a publish while the PubSub is down answers unavailable", "[transport][e2e]") {
    WsServer<DownPubSub> server(quiet_hub());
    server.start();
    TestClients clients;
    auto c = clients.open(server.port());
    REQUIRE(c->wait_connected() == ClientConn::State::open);
    c->send(R"({"type":"publish","channel":"a","data":1,"id":5})");
    const auto error = c->next_of_type("error");
    REQUIRE(error);
    CHECK(string_field(*error, "code") == "unavailable");
    CHECK(parse_frame(*error)["id"].GetInt() == 5);
    c->send(R"({"type":"subscribe","channel":"a","id":6})");
    CHECK(code_of(*c) == "unavailable");
}

TEST_CASE("a frame over max_message_bytes closes with 1009", "[transport][e2e][limits]") {
    WebsocketppTransportConfig tc = ephemeral_port();
    tc.max_message_bytes = 1024;
    HubConfig hc = quiet_hub();
    hc.max_message_bytes = 1024 * 1024;  // far above: only the transport can refuse 2000 bytes
    WsServer<> server(hc, tc);
    server.start();
    TestClients clients;
    auto c = clients.open(server.port());
    REQUIRE(c->wait_connected() == ClientConn::State::open);
    REQUIRE(c->next_of_type("welcome"));
    const auto messages_before = server.hub.stats().messages_in;
    c->send(R"({"type":"publish","channel":"a","data":")" + std::string(2000, 'x') + R"("})");
    CHECK(c->wait_closed() == 1009);
    CHECK(server.hub.stats().messages_in == messages_before);  // the hub never saw it
}

namespace {
// A masked text frame header that announces `length` payload bytes (64-bit length form).
std::string frame_header_announcing(std::uint64_t length) {
    std::string header;
    header.push_back(static_cast<char>(0x81));        // FIN, text
    header.push_back(static_cast<char>(0x80 | 127));  // masked, 64-bit length follows
    for (int shift = 56; shift >= 0; shift -= 8) header.push_back(static_cast<char>((length >> shift) & 0xFF));
    header.append("\x12\x34\x56\x78", 4);  // masking key
    return header;
}
}  // namespace

TEST_CASE("a frame header announcing 100 MB is refused with 1009 before any payload arrives",
          "[transport][e2e][limits]") {
    WebsocketppTransportConfig tc = ephemeral_port();
    tc.max_message_bytes = 64 * 1024;
    HubConfig hc = quiet_hub();
    hc.max_message_bytes = 64 * 1024;
    WsServer<> server(hc, tc);
    server.start();
    RawWsClient raw(server.port());
    REQUIRE(raw.upgraded());
    const auto welcome = raw.read_frame();
    REQUIRE(welcome);
    CHECK(welcome->opcode == 0x1);
    // The header only: not one byte of the payload ever follows.
    raw.send_raw(frame_header_announcing(100ull * 1024 * 1024));
    std::optional<RawWsClient::Frame> close;
    while (auto frame = raw.read_frame()) {
        if (frame->opcode == 0x8) {
            close = frame;
            break;
        }
    }
    REQUIRE(close);
    CHECK(close->close_code() == 1009);
}

TEST_CASE("a client's ping is answered with a pong carrying its payload", "[transport][e2e][ping]") {
    WebsocketppTransportConfig tc = ephemeral_port();
    tc.ping_interval = std::chrono::milliseconds(0);  // no server pings in the way
    WsServer<> server(quiet_hub(), tc);
    server.start();
    RawWsClient raw(server.port());
    REQUIRE(raw.upgraded());
    for (const std::string payload : {"are-you-there", "", "second"}) {
        INFO("ping payload: '" << payload << "'");
        raw.send_ping(payload);
        std::optional<RawWsClient::Frame> pong;
        while (auto frame = raw.read_frame()) {
            REQUIRE(frame->opcode != 0x8);  // not closed
            if (frame->opcode == 0xA) {
                pong = frame;
                break;
            }
        }
        REQUIRE(pong);
        CHECK(pong->payload == payload);
    }
    // And the connection still carries requests.
    raw.send_text(R"({"type":"subscribe","channel":"a","id":1})");
    std::optional<RawWsClient::Frame> ack;
    while (auto frame = raw.read_frame()) {
        if (frame->opcode == 0x1 && frame_type(frame->payload) == "ack") {
            ack = frame;
            break;
        }
    }
    CHECK(ack);
}

TEST_CASE("handshakes: origin allowlist 403, auth hook 401/403, unknown path 404, plain HTTP", "[transport][e2e]") {
    WebsocketppTransportConfig tc = ephemeral_port();
    tc.allowed_origins = {"https://chat.example"};
    // Declared before the server: it logs until its destructor is done.
    std::vector<std::string> logged;
    std::mutex log_mutex;
    WsServer<> server(quiet_hub(), tc);
    server.transport.set_log_sink([&](LogLevel, std::string_view line) {
        std::lock_guard<std::mutex> lock(log_mutex);
        logged.emplace_back(line);
    });
    server.transport.set_log_level(LogLevel::debug);
    server.transport.set_auth_hook([](const HttpRequest& request) {
        const auto token = request.query_param("token");
        if (token == "s3cr3t-token") return AuthDecision::accepted();
        return AuthDecision::refused(token.empty() ? 401 : 403);
    });
    server.transport.set_http_handler([](const HttpRequest& request) {
        HttpResponse response;
        if (request.path == "/hello") {
            response.status = 200;
            response.body = "hi " + request.query_param("name");
        }
        return response;
    });
    server.start();
    TestClients clients;
    const std::map<std::string, std::string> good_origin = {{"Origin", "https://chat.example"}};

    auto foreign = clients.open(server.port(), "/ws?token=s3cr3t-token", {{"Origin", "https://evil.example"}});
    CHECK(foreign->wait_connected() == ClientConn::State::failed);
    CHECK(foreign->http_status() == 403);
    auto anonymous = clients.open(server.port(), "/ws", good_origin);
    CHECK(anonymous->wait_connected() == ClientConn::State::failed);
    CHECK(anonymous->http_status() == 401);
    auto wrong = clients.open(server.port(), "/ws?token=guess", good_origin);
    CHECK(wrong->wait_connected() == ClientConn::State::failed);
    CHECK(wrong->http_status() == 403);
    auto elsewhere = clients.open(server.port(), "/other?token=s3cr3t-token", good_origin);
    CHECK(elsewhere->wait_connected() == ClientConn::State::failed);
    CHECK(elsewhere->http_status() == 404);
    auto good = clients.open(server.port(), "/ws?token=s3cr3t-token", good_origin);
    REQUIRE(good->wait_connected() == ClientConn::State::open);
    CHECK(good->next_of_type("welcome"));

    // Plain HTTP on the same port.
    asio::io_context io;
    asio::ip::tcp::socket socket(io);
    socket.connect({asio::ip::make_address("127.0.0.1"), server.port()});
    const std::string request = "GET /hello?name=you HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    asio::write(socket, asio::buffer(request));
    std::string response;
    std::error_code ec;
    std::array<char, 1024> buffer{};
    while (!ec) response.append(buffer.data(), socket.read_some(asio::buffer(buffer), ec));
    CHECK(response.rfind("HTTP/1.1 200", 0) == 0);
    CHECK(response.find("hi you") != std::string::npos);

    // Tokens never reach a log, even at debug.
    good->close();
    CHECK(good->wait_closed() >= 0);
    std::lock_guard<std::mutex> lock(log_mutex);
    CHECK_FALSE(logged.empty());
    for (const auto& line : logged) {
        INFO(line);
        CHECK(line.find("s3cr3t") == std::string::npos);
    }
}

namespace {
// Sends raw bytes and reads until the peer closes or `deadline` passes.
std::string raw_exchange(std::uint16_t port, const std::string& bytes, std::chrono::milliseconds deadline) {
    asio::io_context io;
    asio::ip::tcp::socket socket(io);
    socket.connect({asio::ip::make_address("127.0.0.1"), port});
    if (!bytes.empty()) asio::write(socket, asio::buffer(bytes));
    std::string received;
    std::array<char, 4096> buffer{};
    const auto until = std::chrono::steady_clock::now() + deadline;
    socket.non_blocking(true);
    while (std::chrono::steady_clock::now() < until) {
        std::error_code ec;
        const auto n = socket.read_some(asio::buffer(buffer), ec);
        if (ec == asio::error::would_block) {
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
            continue;
        }
        if (ec) return received + "<closed>";
        received.append(buffer.data(), n);
    }
    return received;
}
}  // namespace

TEST_CASE("a client that never completes the handshake is dropped after handshake_timeout", "[transport][e2e][limits]") {
    WebsocketppTransportConfig tc = ephemeral_port();
    tc.handshake_timeout = std::chrono::milliseconds(300);
    WsServer<> server(quiet_hub(), tc);
    server.start();
    // Half a request line, then silence: the server must not wait forever.
    const auto seen = raw_exchange(server.port(), "GET /ws HTTP/1.1\r\nHost: x\r\n", std::chrono::seconds(20));
    CHECK(seen.find("<closed>") != std::string::npos);
}

TEST_CASE("permessage-deflate is never negotiated", "[transport][e2e][limits]") {
    WsServer<> server(quiet_hub());
    server.start();
    const std::string request =
        "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n";
    const auto response = raw_exchange(server.port(), request, std::chrono::milliseconds(500));
    REQUIRE(response.rfind("HTTP/1.1 101", 0) == 0);
    std::string lower = response;
    std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
    CHECK(lower.find("sec-websocket-extensions") == std::string::npos);
}

TEST_CASE("at the default log level a busy session writes no log line", "[transport][e2e][logs]") {
    std::atomic<int> lines{0};  // before the server, which logs until destroyed
    WsServer<> server(quiet_hub());
    server.transport.set_log_sink([&](LogLevel, std::string_view) { ++lines; });
    server.start();
    TestClients clients;
    auto c = clients.open(server.port());
    REQUIRE(c->wait_connected() == ClientConn::State::open);
    c->send(R"({"type":"subscribe","channel":"a","id":1})");
    for (int i = 0; i < 200; ++i) c->send(R"({"type":"publish","channel":"a","data":1})");
    for (int i = 0; i < 200; ++i) REQUIRE(c->next_of_type("message"));
    c->close();
    c->wait_closed();
    CHECK(lines.load() == 0);
}

// The transport reads through a 1 KiB buffer per connection and drops the
// parsed handshake once the connection is open (both to keep idle
// connections small). Neither may cost a byte: a handshake several times the
// buffer reaches the auth hook whole, a publish 48 times the buffer arrives
// whole, and the connection keeps working after its handshake is gone.
TEST_CASE("a large handshake and a large publish pass the 1 KiB read buffer whole", "[transport][e2e][limits]") {
    WsServer<> server(quiet_hub());
    const std::string cookie = "session=" + std::string(8 * 1024, 'c');
    std::atomic<std::size_t> cookie_seen{0};
    server.transport.set_auth_hook([&](const HttpRequest& request) {
        cookie_seen = request.header("cookie").size();
        return AuthDecision::accepted();
    });
    server.start();
    TestClients clients;
    auto big = clients.open(server.port(), "/ws", {{"Cookie", cookie}});
    REQUIRE(big->wait_connected() == ClientConn::State::open);
    REQUIRE(big->next_of_type("welcome"));
    CHECK(cookie_seen.load() == cookie.size());
    auto other = clients.open(server.port());
    REQUIRE(other->wait_connected() == ClientConn::State::open);
    REQUIRE(other->next_of_type("welcome"));
    for (auto* c : {&big, &other}) {
        (*c)->send(R"({"type":"subscribe","channel":"big","id":1})");
        REQUIRE((*c)->next_of_type("ack"));
    }

    std::string text(48 * 1024, ' ');
    for (std::size_t i = 0; i < text.size(); ++i) text[i] = static_cast<char>('a' + i % 26);
    big->send(R"({"type":"publish","channel":"big","data":")" + text + R"("})");
    const std::string expected = R"({"type":"message","channel":"big","data":")" + text + R"("})";
    for (auto* c : {&big, &other}) {
        const auto message = (*c)->next_of_type("message");
        REQUIRE(message);
        CHECK(*message == expected);
    }
    // Still a working connection: it can unsubscribe and close cleanly.
    big->send(R"({"type":"unsubscribe","channel":"big","id":2})");
    CHECK(big->next_of_type("ack"));
    big->close(1000);
    CHECK(big->wait_closed() == 1000);
}

// A client that vanishes without a closing handshake is the everyday end of a
// mobile or crashed client: websocketpp calls it an error, but a busy server
// must not write a warning per disconnect. It is logged at debug.
TEST_CASE("clients that vanish (end of file, reset) are logged at debug, not as warnings", "[transport][e2e][logs]") {
    std::mutex mutex;
    std::vector<std::pair<LogLevel, std::string>> lines;  // before the server, which logs until destroyed
    WsServer<> server(quiet_hub());
    server.transport.set_log_sink([&](LogLevel level, std::string_view line) {
        std::lock_guard<std::mutex> lock(mutex);
        lines.emplace_back(level, std::string(line));
    });
    server.start();
    for (const bool reset : {false, true}) {
        RawWsClient raw(server.port());
        REQUIRE(raw.upgraded());
        REQUIRE(raw.read_frame());  // welcome: the hub has the connection
        REQUIRE(eventually([&] { return server.hub.stats().connections == 1; }));
        raw.vanish(reset);
        REQUIRE(eventually([&] { return server.hub.stats().connections == 0; }));
    }
    std::lock_guard<std::mutex> lock(mutex);
    bool saw_peer_gone = false;
    for (const auto& [level, line] : lines) {
        INFO(line);
        CHECK(level == LogLevel::debug);
        if (line.find("End of File") != std::string::npos || line.find("reset") != std::string::npos) saw_peer_gone = true;
    }
    CHECK(saw_peer_gone);  // websocketpp did report them; they were only demoted
}
