// The registry's pool rules: who may join a tunnel name, replacement of an agent's own stale
// member, leaving, member selection, and TUNNEL_HEALTH's effect on the rotation.
#include "gateway/registry.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/asio/local/connect_pair.hpp>
#include <map>

#include "support/run.h"

namespace proxer::gateway {
namespace {

using ::testing::HasSubstr;

struct Quiet : tunnel::SessionHandler {
  void on_control(tunnel::Session&, const proto::FrameHeader&, proto::Bytes) override {}
  void on_open(tunnel::Session&, std::shared_ptr<tunnel::Stream>, proto::OpenStream) override {}
  void on_closed(tunnel::Session&, const std::string&) override {}
};

// Sessions over socket pairs whose far ends stay silent: live until closed.
struct Sessions {
  std::shared_ptr<Quiet> handler = std::make_shared<Quiet>();
  net::io_context ioc;
  std::vector<std::shared_ptr<tunnel::Session>> made;
  std::vector<transport::UnixSocket> peers;
  std::shared_ptr<tunnel::Session> make() {
    transport::UnixSocket a(ioc), b(ioc);
    net::local::connect_pair(a, b);
    peers.push_back(std::move(b));
    tunnel::SessionOptions o;
    o.opener = true;
    made.push_back(std::make_shared<tunnel::Session>(transport::Stream(std::move(a)), o));
    made.back()->start(handler);
    return made.back();
  }
  ~Sessions() {
    for (auto& s : made) s->close(proto::ErrorCode::None, "test over");
    proxer::testing::settle(ioc, std::chrono::milliseconds(10));
  }
};

std::shared_ptr<Tunnel> member(std::string agent, std::shared_ptr<tunnel::Session> s,
                               bool pool = true, std::string name = "app") {
  auto t = std::make_shared<Tunnel>();
  t->name = std::move(name);
  t->agent_id = std::move(agent);
  t->session = std::move(s);
  t->pool = pool;
  return t;
}

std::vector<std::string> agents_of(const Registry& r, std::string_view name) {
  std::vector<std::string> out;
  if (const auto* p = r.pool(name)) {
    for (const auto& m : p->members) out.push_back(m->agent_id);
  }
  return out;
}

TEST(RegistryPool, MembersThatAllOptInShareTheName) {
  Sessions s;
  Registry r(1);
  std::string err;
  ASSERT_TRUE(r.add(member("a", s.make()), &err)) << err;
  ASSERT_TRUE(r.add(member("b", s.make()), &err)) << err;
  ASSERT_TRUE(r.add(member("c", s.make()), &err)) << err;
  EXPECT_EQ(agents_of(r, "app"), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(r.size(), 1u);
  EXPECT_EQ(r.all().size(), 3u);
  EXPECT_EQ(r.find("app")->agent_id, "a");
}

TEST(RegistryPool, RefusesWhenTheNewcomerOrAHolderDidNotOptIn) {
  Sessions s;
  Registry r(1);
  std::string err;
  ASSERT_TRUE(r.add(member("a", s.make(), false), &err));
  EXPECT_FALSE(r.add(member("b", s.make(), true), &err));
  EXPECT_EQ(err, "tunnel 'app' is already served by agent 'a' without pool = true");

  ASSERT_TRUE(r.add(member("p", s.make(), true, "web"), &err));
  err.clear();
  EXPECT_FALSE(r.can_add(*member("q", s.make(), false, "web"), &err));
  EXPECT_THAT(err, HasSubstr("already served by agent 'p' as a pool: set pool = true"));
  EXPECT_FALSE(r.add(member("q", s.make(), false, "web"), &err));
  EXPECT_EQ(agents_of(r, "web"), std::vector<std::string>{"p"});
}

TEST(RegistryPool, RefusesAnotherTypeOrToken) {
  Sessions s;
  Registry r(1);
  std::string err;
  auto a = member("a", s.make());
  a->token = Secret("s3cret");
  ASSERT_TRUE(r.add(a, &err));
  auto tcp = member("b", s.make());
  tcp->type = proto::TunnelType::Tcp;
  tcp->token = Secret("s3cret");
  EXPECT_FALSE(r.add(tcp, &err));
  EXPECT_THAT(err, HasSubstr("as a HTTP tunnel; a TCP tunnel cannot join its pool"));
  auto other = member("c", s.make());
  other->token = Secret("different");
  EXPECT_FALSE(r.add(other, &err));
  EXPECT_THAT(err, HasSubstr("with a different per-tunnel token"));
  EXPECT_EQ(err.find("different\""), std::string::npos);  // the token itself is never told
  auto none = member("d", s.make());
  EXPECT_FALSE(r.add(none, &err));  // no token vs a token
  auto same = member("e", s.make());
  same->token = Secret("s3cret");
  EXPECT_TRUE(r.add(same, &err)) << err;
  EXPECT_EQ(agents_of(r, "app"), (std::vector<std::string>{"a", "e"}));
}

TEST(RegistryPool, TheSameAgentReplacesItsOwnMemberInsteadOfPilingUp) {
  Sessions s;
  Registry r(1);
  std::string err;
  ASSERT_TRUE(r.add(member("a", s.make()), &err));
  ASSERT_TRUE(r.add(member("b", s.make()), &err));
  auto again = member("a", s.make());  // "a" reconnected on a new session
  ASSERT_TRUE(r.add(again, &err)) << err;
  EXPECT_EQ(agents_of(r, "app"), (std::vector<std::string>{"b", "a"}));
  EXPECT_EQ(r.member("app", again->session.get()), again);
  // Re-registering on the same session (and a non-pool agent replacing itself) too.
  ASSERT_TRUE(r.add(member("a", again->session), &err));
  EXPECT_EQ(agents_of(r, "app"), (std::vector<std::string>{"b", "a"}));
  ASSERT_TRUE(r.add(member("solo", s.make(), false, "x"), &err));
  ASSERT_TRUE(r.add(member("solo", s.make(), false, "x"), &err)) << err;
  EXPECT_EQ(agents_of(r, "x"), std::vector<std::string>{"solo"});
}

TEST(RegistryPool, DeadHoldersDoNotBlockAndLeaversLeave) {
  Sessions s;
  Registry r(1);
  std::string err;
  auto a = member("a", s.make(), false);
  ASSERT_TRUE(r.add(a, &err));
  a->session->close(proto::ErrorCode::None, "gone");
  proxer::testing::settle(s.ioc, std::chrono::milliseconds(20));
  ASSERT_TRUE(a->session->closed());
  // A name whose only holder's session ended is free, pool or not.
  ASSERT_TRUE(r.add(member("b", s.make()), &err)) << err;
  EXPECT_EQ(agents_of(r, "app"), std::vector<std::string>{"b"});
  auto c = member("c", s.make());
  ASSERT_TRUE(r.add(c, &err));
  r.remove("app", c->session.get());
  EXPECT_EQ(agents_of(r, "app"), std::vector<std::string>{"b"});
  r.remove("app", c->session.get());  // twice: nothing more
  r.remove("app", r.find("app")->session.get());
  EXPECT_EQ(r.pool("app"), nullptr);
  EXPECT_EQ(r.size(), 0u);
}

TEST(RegistryPool, PickSpreadsOverUsableMembersOnly) {
  Sessions s;
  Registry r(1);
  std::string err;
  auto a = member("a", s.make());
  auto b = member("b", s.make());
  ASSERT_TRUE(r.add(a, &err));
  ASSERT_TRUE(r.add(b, &err));
  std::map<std::string, int> seen;
  for (int i = 0; i < 10; ++i) ++seen[r.pick("app")->agent_id];
  EXPECT_EQ(seen, (std::map<std::string, int>{{"a", 5}, {"b", 5}}));
  // Requests in flight steer least_request.
  {
    MemberLoad busy(a);
    EXPECT_EQ(a->active, 1u);
    for (int i = 0; i < 4; ++i) EXPECT_EQ(r.pick("app")->agent_id, "b");
  }
  EXPECT_EQ(a->active, 0u);
  // The agent reports its target unhealthy: out of rotation, back in when it recovers.
  a->healthy = false;
  for (int i = 0; i < 4; ++i) EXPECT_EQ(r.pick("app", proxy::Lb::RoundRobin)->agent_id, "b");
  EXPECT_TRUE(r.has_usable("app", proto::TunnelType::Http));
  b->session->close(proto::ErrorCode::None, "gone");
  proxer::testing::settle(s.ioc, std::chrono::milliseconds(20));
  EXPECT_EQ(r.pick("app"), nullptr);
  EXPECT_FALSE(r.has_usable("app", proto::TunnelType::Http));
  a->healthy = true;
  EXPECT_EQ(r.pick("app"), a);
  EXPECT_FALSE(r.has_usable("app", proto::TunnelType::Tcp));
  EXPECT_EQ(r.pick("nope"), nullptr);
}

TEST(RegistryPool, HashPoliciesKeepAKeyOnOneMember) {
  Sessions s;
  Registry r(1);
  std::string err;
  for (const char* id : {"a", "b", "c"}) ASSERT_TRUE(r.add(member(id, s.make()), &err));
  std::map<std::string, int> spread;
  for (int k = 0; k < 300; ++k) {
    const auto key = proxy::hash64("10.0.0." + std::to_string(k));
    const auto first = r.pick("app", proxy::Lb::IpHash, key);
    for (int again = 0; again < 3; ++again) EXPECT_EQ(r.pick("app", proxy::Lb::IpHash, key), first);
    ++spread[first->agent_id];
  }
  EXPECT_EQ(spread.size(), 3u);
}

TEST(RegistryPool, EveryRegistrationGetsItsOwnId) {
  Sessions s;
  Registry r(1);
  std::string err;
  auto a = member("a", s.make());
  auto b = member("b", s.make());
  ASSERT_TRUE(r.add(a, &err));
  ASSERT_TRUE(r.add(b, &err));
  EXPECT_NE(a->id, 0u);
  EXPECT_NE(a->id, b->id);
  const auto first = a->id;
  ASSERT_TRUE(r.add(a, &err));  // the same member again keeps its id
  EXPECT_EQ(a->id, first);
  auto again = member("a", s.make());  // "a" registers again: a new member, a new id
  ASSERT_TRUE(r.add(again, &err));
  EXPECT_NE(again->id, first);
  EXPECT_NE(again->id, b->id);
}

TEST(RegistryPool, AClusterEndpointsChecksExcludeTheirFailingMembersOnly) {
  Sessions s;
  Registry r(1);
  std::string err;
  auto a = member("a", s.make());
  auto b = member("b", s.make());
  auto c = member("c", s.make());
  for (const auto& m : {a, b, c}) ASSERT_TRUE(r.add(m, &err));
  proxy::MemberHealth checks(1, 1);
  checks.record(b->id, "b", false, "status 500");
  std::map<std::string, int> seen;
  for (int i = 0; i < 8; ++i) ++seen[r.pick("app", proxy::Lb::RoundRobin, 0, &checks)->agent_id];
  EXPECT_EQ(seen, (std::map<std::string, int>{{"a", 4}, {"c", 4}}));
  EXPECT_FALSE(usable(*b, &checks));
  EXPECT_TRUE(usable(*b, nullptr));
  // Hash policies: only the failing member's keys move.
  for (int k = 0; k < 100; ++k) {
    const auto key = proxy::hash64("10.0.0." + std::to_string(k));
    const auto all = r.pick("app", proxy::Lb::IpHash, key);
    const auto checked = r.pick("app", proxy::Lb::IpHash, key, &checks);
    if (all != b) {
      EXPECT_EQ(checked, all);
    }
    EXPECT_NE(checked, b);
  }
  // With the agent's own verdict: a member must pass both.
  a->healthy = false;
  for (int i = 0; i < 4; ++i) EXPECT_EQ(r.pick("app", proxy::Lb::RoundRobin, 0, &checks), c);
  checks.record(c->id, "c", false, "timeout");
  EXPECT_EQ(r.pick("app", proxy::Lb::RoundRobin, 0, &checks), nullptr);
  EXPECT_FALSE(r.has_usable("app", proto::TunnelType::Http, &checks));
  EXPECT_TRUE(r.has_usable("app", proto::TunnelType::Http));  // other users of the name
  // One member left (the single-member path): the checks still apply.
  r.remove("app", a->session.get());
  r.remove("app", b->session.get());
  EXPECT_EQ(r.pick("app", proxy::Lb::RoundRobin, 0, &checks), nullptr);
  EXPECT_EQ(r.pick("app"), c);
}

}  // namespace
}  // namespace proxer::gateway
