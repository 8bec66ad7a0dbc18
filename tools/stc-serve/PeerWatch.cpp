// PeerWatch: finds a request's socket by its addresses and polls it for the
// client's end of the connection.
#include "PeerWatch.h"

#include <cstdlib>
#include <dirent.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>

namespace stc::serve {
namespace {

// The numeric host and the port of an address, as cpp-httplib writes them
// into a request (getnameinfo with NI_NUMERICHOST).
bool sameEnd(const sockaddr_storage &a, socklen_t len, const std::string &addr,
             int port) {
  char host[NI_MAXHOST], serv[NI_MAXSERV];
  if (getnameinfo(reinterpret_cast<const sockaddr *>(&a), len, host,
                  sizeof(host), serv, sizeof(serv),
                  NI_NUMERICHOST | NI_NUMERICSERV) != 0)
    return false;
  return std::atoi(serv) == port && addr == host;
}

} // namespace

PeerWatch PeerWatch::find(const std::string &localAddr, int localPort,
                          const std::string &remoteAddr, int remotePort) {
  PeerWatch w;
  DIR *dir = opendir("/proc/self/fd");
  if (!dir)
    return w;
  while (dirent *e = readdir(dir)) {
    char *end;
    const long fd = std::strtol(e->d_name, &end, 10);
    if (*end || end == e->d_name || fd == dirfd(dir))
      continue;
    struct stat st;
    if (fstat(static_cast<int>(fd), &st) != 0 || !S_ISSOCK(st.st_mode))
      continue;
    sockaddr_storage local{}, peer{};
    socklen_t localLen = sizeof(local), peerLen = sizeof(peer);
    if (getsockname(static_cast<int>(fd), reinterpret_cast<sockaddr *>(&local),
                    &localLen) != 0 ||
        getpeername(static_cast<int>(fd), reinterpret_cast<sockaddr *>(&peer),
                    &peerLen) != 0)
      continue;
    if (sameEnd(peer, peerLen, remoteAddr, remotePort) &&
        sameEnd(local, localLen, localAddr, localPort)) {
      w.fd_ = static_cast<int>(fd);
      break;
    }
  }
  closedir(dir);
  return w;
}

bool PeerWatch::gone() const {
  if (fd_ < 0)
    return false;
  pollfd p = {fd_, POLLIN | POLLRDHUP, 0};
  if (poll(&p, 1, 0) <= 0)
    return false;
  if (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL))
    return true;
  char c;
  return (p.revents & POLLIN) && recv(fd_, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

} // namespace stc::serve
