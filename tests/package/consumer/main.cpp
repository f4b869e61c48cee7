// A program that uses wshub the way a user does; the package tests build and
// run it. It is also the worked example of docs/concepts.md: a Transport of
// one's own (here a loopback that keeps frames in memory), a Hub on the
// in-process LocalPubSub, two clients, a subscribe, a publish, a shutdown.
#include <wshub/wshub.hpp>

#include <asio/io_context.hpp>

#include <iostream>
#include <map>
#include <string>
#include <vector>

namespace {

// The smallest Transport: every "connection" is an inbox of frames.
class LoopbackTransport {
public:
    void set_handlers(wshub::TransportHandlers handlers) { handlers_ = std::move(handlers); }
    void send(wshub::ConnectionId id, const wshub::SharedFrame& frame) { inbox_[id].push_back(frame->payload); }
    void close(wshub::ConnectionId id, std::uint16_t code, std::string_view) {
        close_codes_[id] = code;
        handlers_.on_close(id);  // the peer answers the close at once
    }
    void terminate(wshub::ConnectionId id) { close_codes_[id] = 1006; }
    wshub::QueueStats queued(wshub::ConnectionId) const { return {}; }  // frames are "written" at once
    void stop_accepting() { accepting_ = false; }

    // The client side.
    wshub::ConnectionId open() {
        const wshub::ConnectionId id = next_++;
        handlers_.on_open(id, {});
        return id;
    }
    void client_sends(wshub::ConnectionId id, std::string text) {
        handlers_.on_message(id, std::move(text), wshub::MessageKind::text);
    }
    const std::vector<std::string>& inbox(wshub::ConnectionId id) { return inbox_[id]; }
    int close_code(wshub::ConnectionId id) { return close_codes_[id]; }

private:
    wshub::TransportHandlers handlers_;
    std::map<wshub::ConnectionId, std::vector<std::string>> inbox_;
    std::map<wshub::ConnectionId, int> close_codes_;
    wshub::ConnectionId next_ = 1;
    bool accepting_ = true;
};
static_assert(wshub::is_transport_v<LoopbackTransport>);

}  // namespace

int main() {
    asio::io_context io;
    LoopbackTransport transport;
    wshub::LocalPubSub pubsub(io.get_executor());
    wshub::HubConfig config;
    config.instance_id = "consumer";
    wshub::Hub<LoopbackTransport, wshub::LocalPubSub> hub(io.get_executor(), transport, pubsub, config);

    const auto alice = transport.open();
    const auto bob = transport.open();
    transport.client_sends(bob, R"({"type":"subscribe","channel":"lobby","id":1})");
    // run() returns once nothing is left to do; restart() lets it run again.
    const auto run_until_idle = [&io] {
        io.restart();
        io.run();
    };
    run_until_idle();
    transport.client_sends(alice, R"({"type":"publish","channel":"lobby","data":{"text":"hello"}})");
    run_until_idle();

    bool shut_down = false;
    hub.shutdown([&] { shut_down = true; });
    run_until_idle();

    for (const auto& frame : transport.inbox(bob)) std::cout << "bob got " << frame << '\n';
    const auto& frames = transport.inbox(bob);
    const bool ok = frames.size() == 3 && frames[0].find(R"("type":"welcome")") != std::string::npos &&
                    frames[1] == R"({"type":"ack","id":1})" &&
                    frames[2] == R"({"type":"message","channel":"lobby","data":{"text":"hello"}})" &&
                    transport.close_code(bob) == 1001 && shut_down;
    std::cout << (ok ? "consumer: ok" : "consumer: FAILED") << '\n';
    return ok ? 0 : 1;
}
