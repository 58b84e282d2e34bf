// A port that is free on loopback now, for an address that must be written down before anything
// listens on it (GATEWAY_ADDR: the trader's APCA_API_BASE_URL is set before the gate starts).
import net from 'node:net';

export function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
