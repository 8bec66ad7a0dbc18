// PeerWatch: tells whether the client of a request has gone away, so that a
// generation nobody will read stops.
#ifndef STC_SERVE_PEERWATCH_H
#define STC_SERVE_PEERWATCH_H

#include <string>

namespace stc::serve {

class PeerWatch {
public:
  PeerWatch() = default;
  // cpp-httplib 0.11 does not hand a handler its connection's socket; a TCP
  // connection is named by its two ends, so the watch finds the process's
  // socket whose local and peer addresses are the request's. The socket stays
  // open while the handler runs (its thread owns the connection).
  static PeerWatch find(const std::string &localAddr, int localPort,
                        const std::string &remoteAddr, int remotePort);
  bool valid() const { return fd_ >= 0; }
  // True once the client closed its end or reset the connection. Data the
  // client sent ahead (a pipelined request) does not count as gone.
  bool gone() const;

private:
  int fd_ = -1;
};

} // namespace stc::serve

#endif
