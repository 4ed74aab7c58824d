/** Unix sockets with fd passing, and pidfds. */
export {
  closeFd,
  MAX_FDS_PER_MESSAGE,
  openSocketFds,
  type PeerCredentials,
  type ReceivedMessage,
  UnixListener,
  type UnixListenerOptions,
  UnixSocket,
  type UnixSocketType,
} from "./socket.ts";
export { openPidfds, Pidfd } from "./pidfd.ts";
