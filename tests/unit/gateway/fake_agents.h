#pragma once
// Agent sessions in-process for gateway unit tests: each is a pair of tunnel sessions over an
// AF_UNIX socket pair, the gateway's end (opens streams) and an agent end that answers every
// stream with one HTTP response head whose status the test sets per request path (or never
// answers, when mute).
#include <boost/asio/local/connect_pair.hpp>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "support/run.h"
#include "tunnel/session.h"

namespace proxer::gateway::testing {

// The agent end: reads a request head, answers `status(path)` with an empty body.
struct AnsweringAgent : tunnel::SessionHandler, std::enable_shared_from_this<AnsweringAgent> {
  unsigned status = 200;                    // the answer to every path not in `by_path`
  std::map<std::string, unsigned> by_path;  // path -> status
  std::size_t requests = 0;
  bool mute = false;                                  // true: takes streams and never answers
  std::size_t opened = 0;                             // streams the gateway opened
  std::vector<std::shared_ptr<tunnel::Stream>> held;  // a mute agent's streams

  void on_control(tunnel::Session&, const proto::FrameHeader&, proto::Bytes) override {}
  void on_closed(tunnel::Session&, const std::string&) override {}
  void on_open(tunnel::Session& s, std::shared_ptr<tunnel::Stream> st, proto::OpenStream) override {
    ++opened;
    if (mute) {
      held.push_back(std::move(st));
      return;
    }
    net::co_spawn(s.get_executor(), answer(shared_from_this(), std::move(st)), net::detached);
  }

  static awaitable<void> answer(std::shared_ptr<AnsweringAgent> self,
                                std::shared_ptr<tunnel::Stream> st) {
    std::string head;
    std::array<char, 1024> buf;
    while (head.find("\r\n\r\n") == std::string::npos) {
      auto [ec, n] = co_await st->read_some(net::buffer(buf));
      if (ec) co_return;
      head.append(buf.data(), n);
    }
    ++self->requests;
    const auto sp = head.find(' ');
    const auto path = head.substr(sp + 1, head.find(' ', sp + 1) - sp - 1);
    const auto it = self->by_path.find(path);
    const unsigned code = it == self->by_path.end() ? self->status : it->second;
    const std::string resp = "HTTP/1.1 " + std::to_string(code) + " X\r\nContent-Length: 0\r\n\r\n";
    co_await st->write(net::buffer(resp));
    st->shutdown_send();
  }
};

// Agents on one io_context. Close them (or let the destructor) before the io_context goes.
struct FakeAgents {
  explicit FakeAgents(net::io_context& c) : ioc(c) {}
  struct Agent {
    std::shared_ptr<tunnel::Session> gateway_end, agent_end;
    std::shared_ptr<AnsweringAgent> answers;
  };
  // A new agent: its gateway end serves the registry's member, its agent end answers.
  Agent& make() {
    transport::UnixSocket a(ioc), b(ioc);
    net::local::connect_pair(a, b);
    tunnel::SessionOptions go;
    go.opener = true;
    tunnel::SessionOptions ao;
    Agent ag;
    ag.answers = std::make_shared<AnsweringAgent>();
    ag.gateway_end = std::make_shared<tunnel::Session>(transport::Stream(std::move(a)), go);
    ag.agent_end = std::make_shared<tunnel::Session>(transport::Stream(std::move(b)), ao);
    ag.gateway_end->start(quiet);
    ag.agent_end->start(ag.answers);
    made.push_back(std::make_unique<Agent>(std::move(ag)));
    return *made.back();
  }
  void close_all() {
    for (auto& m : made) {
      m->gateway_end->close(proto::ErrorCode::None, "test over");
      m->agent_end->close(proto::ErrorCode::None, "test over");
    }
    proxer::testing::settle(ioc, std::chrono::milliseconds(20));
  }
  ~FakeAgents() { close_all(); }

  struct Quiet : tunnel::SessionHandler {
    void on_control(tunnel::Session&, const proto::FrameHeader&, proto::Bytes) override {}
    void on_open(tunnel::Session&, std::shared_ptr<tunnel::Stream>, proto::OpenStream) override {}
    void on_closed(tunnel::Session&, const std::string&) override {}
  };
  net::io_context& ioc;
  std::shared_ptr<Quiet> quiet = std::make_shared<Quiet>();
  std::vector<std::unique_ptr<Agent>> made;
};

}  // namespace proxer::gateway::testing
