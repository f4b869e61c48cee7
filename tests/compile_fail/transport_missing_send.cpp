// expect: wshub Transport requirement: void send\(wshub::ConnectionId, const wshub::SharedFrame&\) is missing
// A Hub over a transport without send() must not compile, and the error must
// name what is missing.
#include <asio/io_context.hpp>

#include "wshub/hub.hpp"
#include "wshub/local_pubsub.hpp"

struct TransportWithoutSend {
    void set_handlers(wshub::TransportHandlers) {}
    void close(wshub::ConnectionId, std::uint16_t, std::string_view) {}
    void terminate(wshub::ConnectionId) {}
    wshub::QueueStats queued(wshub::ConnectionId) const { return {}; }
    void stop_accepting() {}
};

int main() {
    asio::io_context io;
    TransportWithoutSend transport;
    wshub::LocalPubSub pubsub(io.get_executor());
    wshub::Hub<TransportWithoutSend, wshub::LocalPubSub> hub(io.get_executor(), transport, pubsub);
}
