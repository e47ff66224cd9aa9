// DNS discovery against a real dnsmasq on a free loopback port.
#include "discovery/dns.h"

#include <gtest/gtest.h>
#include <sys/socket.h>

#include "servers.h"

namespace proxer::discovery {
namespace {

using namespace testing;

DnsOptions options(const Dnsmasq& dns, std::string name, DnsType type, std::uint16_t port = 8080) {
  DnsOptions o;
  o.name = std::move(name);
  o.type = type;
  o.port = port;
  o.nameserver = dns.address();
  o.min_refresh = 100ms;
  o.max_refresh = 60s;  // a refresh within seconds can only come from the TTL (1 s)
  o.query_timeout = 2s;
  return o;
}

TEST(Dns, AddressesThenTheirChangeAfterTheTtl) {
  Dnsmasq dns;
  ASSERT_NO_FATAL_FAILURE(dns.start({}, "10.0.0.2 web.test\n10.0.0.1 web.test\n"));
  net::io_context ioc;
  Updates u;
  DnsProvider p(ioc.get_executor(), options(dns, "web.test.", DnsType::A));
  p.start(u.callback());
  ASSERT_TRUE(u.wait_for(ioc, {{"10.0.0.1", 8080, 1}, {"10.0.0.2", 8080, 1}}))
      << (u.all.empty() ? "no update" : describe(u.all.back())) << "\n"
      << dns.log();
  EXPECT_EQ(u.all.size(), 1u);

  // dnsmasq answers with TTL 1 (--local-ttl): the provider asks again after about 1 s, although
  // max_refresh is a minute.
  dns.set_hosts("10.0.0.3 web.test\n10.0.0.1 web.test\n");
  ASSERT_TRUE(u.wait_for(ioc, {{"10.0.0.1", 8080, 1}, {"10.0.0.3", 8080, 1}}, 5s))
      << describe(u.all.back());
  EXPECT_EQ(u.all.size(), 2u);

  // Unchanged answers are not reported again, and the queries follow the TTL (1 s), not
  // min_refresh (100 ms).
  auto queries = [&] {
    const auto log = dns.log();
    std::size_t n = 0;
    for (auto pos = log.find("query[A] web.test"); pos != std::string::npos;
         pos = log.find("query[A] web.test", pos + 1))
      ++n;
    return n;
  };
  const auto before = queries();
  run_for(ioc, 2500ms);
  EXPECT_EQ(u.all.size(), 2u);
  EXPECT_GE(queries() - before, 2u);
  EXPECT_LE(queries() - before, 4u);
}

TEST(Dns, AaaaAndBothFamilies) {
  Dnsmasq dns;
  ASSERT_NO_FATAL_FAILURE(dns.start({}, "10.0.0.1 web.test\nfd00::1 web.test\nfd00::2 v6.test\n"));
  net::io_context ioc;
  Updates six, both, v4only;
  DnsProvider p6(ioc.get_executor(), options(dns, "web.test.", DnsType::AAAA, 80));
  DnsProvider pboth(ioc.get_executor(), options(dns, "web.test.", DnsType::A_AAAA, 80));
  DnsProvider pv6name(ioc.get_executor(), options(dns, "v6.test.", DnsType::A_AAAA, 80));
  p6.start(six.callback());
  pboth.start(both.callback());
  pv6name.start(v4only.callback());
  EXPECT_TRUE(six.wait_for(ioc, {{"fd00::1", 80, 1}}));
  EXPECT_TRUE(both.wait_for(ioc, {{"10.0.0.1", 80, 1}, {"fd00::1", 80, 1}}));
  // A+AAAA for a name with only an AAAA record: the empty A answer is no error.
  EXPECT_TRUE(v4only.wait_for(ioc, {{"fd00::2", 80, 1}}));
}

TEST(Dns, SrvGivesTargetNamesPortsAndWeightsOfTheBestPriority) {
  Dnsmasq dns;
  ASSERT_NO_FATAL_FAILURE(dns.start({"--srv-host=_http._tcp.web.test,b1.test,8081,0,5",
                                     "--srv-host=_http._tcp.web.test,B2.test,8082,0,0",
                                     "--srv-host=_http._tcp.web.test,b3.test,8083,0,60000",
                                     "--srv-host=_http._tcp.web.test,backup.test,9000,1,10"}));
  net::io_context ioc;
  Updates u;
  DnsProvider p(ioc.get_executor(), options(dns, "_http._tcp.web.test.", DnsType::SRV, 0));
  p.start(u.callback());
  EXPECT_TRUE(
      u.wait_for(ioc, {{"b1.test", 8081, 5}, {"b2.test", 8082, 1}, {"b3.test", 8083, 1000}}))
      << (u.all.empty() ? "no update" : describe(u.all.back())) << "\n"
      << dns.log();
}

TEST(Dns, NoRecordsIsAValidEmptySet) {
  Dnsmasq dns;
  ASSERT_NO_FATAL_FAILURE(dns.start({}, "10.0.0.1 web.test\n"));
  net::io_context ioc;
  LogCapture logs;
  Updates nodata, nxdomain;
  DnsProvider p1(ioc.get_executor(), options(dns, "web.test.", DnsType::AAAA));
  DnsProvider p2(ioc.get_executor(), options(dns, "missing.test.", DnsType::A));
  p1.start(nodata.callback());
  p2.start(nxdomain.callback());
  EXPECT_TRUE(nodata.wait_for(ioc, {}));
  EXPECT_TRUE(nxdomain.wait_for(ioc, {}));
  run_for(ioc, 1200ms);  // several refreshes: one warning
  EXPECT_EQ(logs.count("NXDOMAIN"), 1u);

  // Records that disappear give an empty set too (an authoritative answer, not an error).
  Updates gone;
  DnsProvider p3(ioc.get_executor(), options(dns, "web.test.", DnsType::A));
  p3.start(gone.callback());
  ASSERT_TRUE(gone.wait_for(ioc, {{"10.0.0.1", 8080, 1}}));
  dns.set_hosts("10.0.0.9 other.test\n");
  EXPECT_TRUE(gone.wait_for(ioc, {}, 5s));
}

TEST(Dns, ServerDownKeepsTheLastSetAndRecovers) {
  Dnsmasq dns;
  ASSERT_NO_FATAL_FAILURE(dns.start({}, "10.0.0.1 web.test\n"));
  net::io_context ioc;
  LogCapture logs;
  Updates u;
  DnsProvider p(ioc.get_executor(), options(dns, "web.test.", DnsType::A));
  p.start(u.callback());
  ASSERT_TRUE(u.wait_for(ioc, {{"10.0.0.1", 8080, 1}}));

  dns.stop();
  run_for(ioc, 2500ms);  // the TTL expired long ago; every attempt fails
  EXPECT_EQ(u.all.size(), 1u) << describe(u.all.back());
  EXPECT_EQ(logs.count("keeping the last endpoint set"), 1u);

  ASSERT_NO_FATAL_FAILURE(dns.start({}, "10.0.0.2 web.test\n"));  // same port
  EXPECT_TRUE(u.wait_for(ioc, {{"10.0.0.2", 8080, 1}}, 8s)) << dns.log();
  EXPECT_EQ(logs.count("recovered"), 1u);
}

TEST(Dns, SilentServerTimesOutWithoutAnUpdate) {
  // A UDP socket that never answers (and no TCP listener).
  const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  net::io_context ioc;
  LogCapture logs;
  Updates u;
  DnsOptions o;
  o.name = "web.test.";
  o.port = 80;
  o.nameserver = "127.0.0.1:" + std::to_string(ntohs(a.sin_port));
  o.min_refresh = 100ms;
  o.query_timeout = 300ms;
  DnsProvider p(ioc.get_executor(), o);
  p.start(u.callback());
  EXPECT_TRUE(Updates::wait(
      ioc, [&] { return logs.count("keeping the last") > 0; }, 3s));
  EXPECT_TRUE(u.all.empty());
  p.stop();
  run_for(ioc, 50ms);
  ::close(fd);
}

TEST(Dns, LargeAnswerRetriedOverTcp) {
  std::string hosts;
  std::vector<Target> want;
  for (int i = 1; i <= 60; ++i) {
    hosts += "10.0.1." + std::to_string(i) + " many.test\n";
    want.push_back({"10.0.1." + std::to_string(i), 80, 1});
  }
  Dnsmasq dns;
  ASSERT_NO_FATAL_FAILURE(dns.start({}, hosts));
  net::io_context ioc;
  Updates u;
  DnsProvider p(ioc.get_executor(), options(dns, "many.test.", DnsType::A, 80));
  p.start(u.callback());
  ASSERT_TRUE(Updates::wait(ioc, [&] { return !u.all.empty(); }));
  EXPECT_EQ(normalize(want), u.all.back()) << describe(u.all.back());
}

TEST(Dns, StopInsideTheCallbackEndsEverything) {
  Dnsmasq dns;
  ASSERT_NO_FATAL_FAILURE(dns.start({}, "10.0.0.1 web.test\n"));
  net::io_context ioc;
  int calls = 0;
  auto p = std::make_unique<DnsProvider>(ioc.get_executor(), options(dns, "web.test.", DnsType::A));
  p->start([&](const std::vector<Target>&) {
    ++calls;
    p.reset();  // destroys the provider from inside its callback
  });
  ASSERT_TRUE(Updates::wait(ioc, [&] { return calls > 0; }));
  dns.set_hosts("10.0.0.2 web.test\n");
  run_for(ioc, 1500ms);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(p, nullptr);
}

TEST(Dns, Options) {
  DnsOptions o;
  EXPECT_NE(validate(o), "");  // no name
  o.name = "web.test";
  EXPECT_NE(validate(o), "");  // no port
  o.port = 80;
  EXPECT_EQ(validate(o), "");
  for (const char* ok : {"127.0.0.1", "127.0.0.1:5353", "::1", "[::1]", "[::1]:53"}) {
    o.nameserver = ok;
    EXPECT_EQ(validate(o), "") << ok;
  }
  for (const char* bad : {"localhost", "127.0.0.1:", "127.0.0.1:70000", "[::1", "1.2.3.4:x"}) {
    o.nameserver = bad;
    EXPECT_NE(validate(o), "") << bad;
  }
  o.nameserver.clear();
  o.max_refresh = 10ms;
  EXPECT_NE(validate(o), "");
  net::io_context ioc;
  EXPECT_THROW(DnsProvider(ioc.get_executor(), DnsOptions{}), std::invalid_argument);

  DnsType t{};
  EXPECT_TRUE(parse_dns_type("SRV", t));
  EXPECT_EQ(t, DnsType::SRV);
  EXPECT_TRUE(parse_dns_type("a+aaaa", t));
  EXPECT_EQ(t, DnsType::A_AAAA);
  EXPECT_FALSE(parse_dns_type("mx", t));
}

// A raw message: header, one question, then records (name = pointer to the question).
std::vector<unsigned char> message(std::vector<std::uint32_t> answer_ttls,
                                   std::vector<std::uint32_t> authority_ttls) {
  std::vector<unsigned char> m = {0x12, 0x34,
                                  0x81, 0x80,
                                  0,    1,
                                  0,    static_cast<unsigned char>(answer_ttls.size()),
                                  0,    static_cast<unsigned char>(authority_ttls.size()),
                                  0,    0};
  for (unsigned char c : std::string("\3web\4test\0", 10)) m.push_back(c);
  m.insert(m.end(), {0, 1, 0, 1});
  auto record = [&](std::uint32_t ttl) {
    m.insert(m.end(), {0xC0, 12, 0, 1, 0, 1});
    m.insert(m.end(), {static_cast<unsigned char>(ttl >> 24), static_cast<unsigned char>(ttl >> 16),
                       static_cast<unsigned char>(ttl >> 8), static_cast<unsigned char>(ttl)});
    m.insert(m.end(), {0, 4, 10, 0, 0, 1});
  };
  for (auto t : answer_ttls) record(t);
  for (auto t : authority_ttls) record(t);
  return m;
}

TEST(DnsTtl, SmallestOfTheAnswerElseOfTheAuthority) {
  auto m = message({300, 30, 600}, {5});
  EXPECT_EQ(min_ttl(m.data(), m.size()), 30u);
  m = message({}, {120});
  EXPECT_EQ(min_ttl(m.data(), m.size()), 120u);
  m = message({}, {});
  EXPECT_EQ(min_ttl(m.data(), m.size()), std::nullopt);
  m = message({0x80000001u}, {});  // top bit set: zero (RFC 2181)
  EXPECT_EQ(min_ttl(m.data(), m.size()), 0u);
}

TEST(DnsTtl, MalformedMessagesGiveNothing) {
  auto m = message({300, 30}, {});
  for (std::size_t cut = 0; cut < m.size(); ++cut)
    EXPECT_EQ(min_ttl(m.data(), cut), std::nullopt) << cut;
  EXPECT_EQ(min_ttl(nullptr, 0), std::nullopt);
  // A label running past the end.
  std::vector<unsigned char> bad = {0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 63, 'a'};
  EXPECT_EQ(min_ttl(bad.data(), bad.size()), std::nullopt);
}

}  // namespace
}  // namespace proxer::discovery
