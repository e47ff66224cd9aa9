// Gateway::reload: the configuration swap of a hot reload (life of a reload: ARCHITECTURE.md).
#include <random>

#include "core/log.h"
#include "gateway/discovered.h"
#include "gateway/gateway.h"

namespace proxer::gateway {

std::string Gateway::reload(const config::GatewayConfig& next) {
  auto logger = log::get("gateway");
  std::shared_ptr<RouteTable> table;
  try {
    // Discovered clusters keep their providers and endpoints when their discovery settings
    // did not change: filled in before the comparison with the running clusters.
    auto filled = next;
    if (discovered_) discovered_->sync(filled);
    table = build_route_table(ex_, filled, std::random_device{}(), ctx_->routes.get());
  } catch (const std::exception& e) {
    return e.what();
  }
  std::size_t kept = 0;
  for (const auto& c : table->clusters) {
    if (ctx_->routes->cluster(c->name()) == c) ++kept;
  }
  ctx_->routes = std::move(table);
  restart_health_checks();  // checkers of unchanged clusters go on; new clusters get theirs
  logger->info("configuration reloaded: {} routes, {} clusters ({} unchanged, state kept)",
               next.routes.size(), next.clusters.size(), kept);
  // Everything but routes and clusters is fixed at start (listeners, TLS, tokens, limits...).
  auto rest = next;
  rest.routes = ctx_->cfg.routes;
  rest.clusters = ctx_->cfg.clusters;
  if (!(rest == ctx_->cfg)) {
    logger->warn(
        "configuration reload: settings other than [[routes]] and [clusters] changed; they take "
        "effect after a restart");
  }
  return {};
}

}  // namespace proxer::gateway
