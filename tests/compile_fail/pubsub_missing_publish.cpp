// expect: wshub PubSub requirement: void publish\(const std::string&, std::string, wshub::Completion\) is missing
// A Hub over a PubSub without publish() must not compile, and the error must
// name what is missing.
#include <asio/io_context.hpp>

#include "support/memory_transport.hpp"
#include "wshub/hub.hpp"

struct PubSubWithoutPublish {
    void set_handlers(wshub::PubSubHandlers) {}
    void subscribe(const std::string&, wshub::Completion) {}
    void unsubscribe(const std::string&, wshub::Completion) {}
    wshub::PubSubState state() const { return wshub::PubSubState::up; }
};

int main() {
    asio::io_context io;
    wshub::test::MemoryTransport transport;
    PubSubWithoutPublish pubsub;
    wshub::Hub<wshub::test::MemoryTransport, PubSubWithoutPublish> hub(io.get_executor(), transport, pubsub);
}
