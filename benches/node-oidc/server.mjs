// node-oidc-provider with dynamic client registration on, its default in-memory adapter, no
// logging: the baseline of benches/load.sh. Usage: node server.mjs <port>
import Provider from 'oidc-provider';

const port = Number(process.argv[2] || 3000);
const issuer = `http://127.0.0.1:${port}`;
const provider = new Provider(issuer, {
  features: {
    registration: { enabled: true },
    devInteractions: { enabled: false },
  },
  clientDefaults: { grant_types: ['authorization_code'], response_types: ['code'] },
});
provider.on('server_error', (ctx, err) => console.error('server_error', err));
provider.listen(port, '127.0.0.1', () => {
  console.log(`node-oidc-provider listening on ${issuer}`);
});
