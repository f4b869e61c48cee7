// WebsocketppTransport and batch frames, over real sockets: a batch (a tick's
// messages for a channel) is written as one buffer of frames back to back,
// and a real WebSocket client must see exactly its messages, in order, with
// every length encoding (7-bit, 16-bit, 64-bit); the queue accounting must
// count the batch's frames in and out, or the slow-client policy would see a
// backlog that never drains.
#include <catch2/catch.hpp>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>

#include "support/ws_clients.hpp"
#include "support/ws_server.hpp"
#include "wshub/websocketpp_transport.hpp"

using namespace wshub;
using namespace wshub::test;

namespace {

// A transport on its own (no hub), run by one thread, remembering the last connection opened.
struct BareTransport {
    explicit BareTransport(bool inline_writes = false) : transport(io, config(inline_writes)) {
        transport.set_handlers(TransportHandlers{
            [this](ConnectionId id, ConnectionInfo) { opened.store(id); },
            [](ConnectionId, std::string, MessageKind) {},
            [](ConnectionId) {},
        });
        if (const auto ec = transport.listen()) throw std::runtime_error("listen: " + ec.message());
        runner = std::thread([this] { io.run(); });
    }
    static WebsocketppTransportConfig config(bool inline_writes) {
        WebsocketppTransportConfig c = ephemeral_port();
        c.inline_writes = inline_writes;
        return c;
    }
    ~BareTransport() {
        work.reset();
        io.stop();
        runner.join();
    }
    // Waits until `client` is open and the transport reported it; its id.
    ConnectionId wait_for_connection(ClientConn& client) {
        REQUIRE(client.wait_connected() == ClientConn::State::open);
        REQUIRE(eventually([&] { return opened.load() != 0; }));
        return opened.load();
    }
    void send(ConnectionId id, SharedFrame frame) {
        asio::post(io, [this, id, frame = std::move(frame)] { transport.send(id, frame); });
    }

    asio::io_context io;
    asio::executor_work_guard<asio::io_context::executor_type> work = asio::make_work_guard(io);
    WebsocketppTransport transport;
    std::atomic<ConnectionId> opened{0};
    std::thread runner;
};

SharedFrame batch_of(const std::vector<std::string>& payloads) {
    std::vector<SharedFrame> messages;
    for (const auto& p : payloads) messages.push_back(make_frame(p, FrameKind::message));
    return make_batch(std::move(messages));
}

}  // namespace

TEST_CASE("a batch frame reaches a real client as its messages, in order, and drains from the queue count",
          "[transport][e2e][batching]") {
    const bool inline_writes = GENERATE(false, true);
    INFO("inline_writes " << inline_writes);
    BareTransport server(inline_writes);
    TestClients clients;
    auto client = clients.open(server.transport.local_port());
    const ConnectionId id = server.wait_for_connection(*client);

    // 7-bit, 16-bit and 64-bit payload lengths, and the boundaries between them.
    const std::vector<std::string> payloads = {
        "a", std::string(125, 'b'), std::string(126, 'c'), std::string(300, 'd'),
        std::string(65535, 'e'), std::string(65536, 'f'), std::string(70000, 'g'), "h",
    };
    const auto prepared_before = server.transport.prepared_messages();
    const SharedFrame batch = batch_of(payloads);
    server.send(id, batch);
    server.send(id, make_frame("after", FrameKind::message));  // a single frame behind the batch
    server.send(id, batch);                                    // the same batch again: prepared once

    std::vector<std::string> got;
    for (std::size_t i = 0; i < 2 * payloads.size() + 1; ++i) {
        const auto message = client->next();
        REQUIRE(message);
        got.push_back(*message);
    }
    std::vector<std::string> expected = payloads;
    expected.push_back("after");
    expected.insert(expected.end(), payloads.begin(), payloads.end());
    CHECK(got == expected);
    CHECK_FALSE(client->next(std::chrono::milliseconds(200)));  // nothing more
    CHECK(server.transport.prepared_messages() == prepared_before + 2);  // the batch and "after"

    // Every frame handed over was counted written: nothing stays queued.
    REQUIRE(eventually([&] {
        const auto q = server.transport.queued(id);
        return q.messages == 0 && q.bytes == 0;
    }));
}

TEST_CASE("until written, a batch counts in queued() as each of its messages", "[transport][e2e][batching]") {
    BareTransport server;
    TestClients clients;
    auto client = clients.open(server.transport.local_port());
    const ConnectionId id = server.wait_for_connection(*client);

    // The slow-client policy reads queued() right after sending. On the one
    // thread running the io_context the write's completion cannot run inside
    // this handler, so the batch is still counted as queued: as 10 frames.
    std::atomic<std::size_t> seen{0};
    asio::post(server.io, [&] {
        server.transport.send(id, batch_of(std::vector<std::string>(10, std::string(50, 'x'))));
        seen.store(server.transport.queued(id).messages);
    });
    REQUIRE(eventually([&] { return seen.load() != 0; }));
    CHECK(seen.load() == 10);
    for (int i = 0; i < 10; ++i) REQUIRE(client->next());
    REQUIRE(eventually([&] { return server.transport.queued(id).messages == 0; }));
}

TEST_CASE("messages a hub publishes in one tick reach a real client in order, whatever their size",
          "[transport][e2e][batching]") {
    HubConfig config;
    config.instance_id = "batch";
    config.publish_rate_per_second = 0;
    WsServer<> server(config);
    server.start();
    TestClients clients;
    auto client = clients.open(server.port());
    REQUIRE(client->wait_connected() == ClientConn::State::open);
    REQUIRE(client->next_of_type("welcome"));
    client->send(R"({"type":"subscribe","channel":"room","id":1})");
    REQUIRE(client->next_of_type("ack"));

    const std::vector<std::string> data = {"1", "\"" + std::string(300, 'x') + "\"",
                                           "\"" + std::string(70000, 'y') + "\"", "4"};
    server.on_strand([&] {
        for (const auto& d : data) server.hub.publish("room", d);
        return 0;
    });
    for (const auto& d : data) {
        const auto message = client->next_of_type("message");
        REQUIRE(message);
        CHECK(*message == R"({"type":"message","channel":"room","data":)" + d + "}");
    }
}
