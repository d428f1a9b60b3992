import { IsUUID } from 'class-validator';
import { principalOf } from '../auth/request-principal.js';
import { principalName } from '../auth/roles.js';
import type { TokenRevocations } from '../auth/token-revocations.js';
import { noContent } from '../http/envelope.js';
import { changeRecord } from './admin-change-record.js';
import type { KeylimeService } from '../http/keylime-service.js';

/** `DELETE /v2.x/tokens/{jti}`: the id of the token to revoke (`ironlime token issue` makes UUIDs). */
export class TokenIdParams {
  @IsUUID('all', { message: 'must be the token id (jti claim): a UUID' })
  jti!: string;
}

/**
 * ironlime's token revocation (Keylime has no bearer tokens). Admin only, as every `DELETE`; a token
 * of any tenant may revoke any token id: the id is random and appears only inside the token, so
 * knowing it means holding the token. Answered once the revocation is stored; from then on the token
 * is refused (401) by the admin API, including the changes of its requests admitted before whose body
 * was still arriving (`changeRecord`), and the dashboard, including its open live views. Audited in the
 * `fleet` stream like every admin change, in the revocation's transaction.
 */
export function registerTokenRoutes(service: KeylimeService, revocations: TokenRevocations): void {
  service.route({
    method: 'DELETE',
    url: '/tokens/:jti',
    admin: true,
    params: TokenIdParams,
    handler: async ({ params, request, reply }) => {
      const principal = principalOf(request);
      const revoker = principal?.kind === 'token' ? principal.tokenId : undefined;
      await revocations.revoke(params.jti.toLowerCase(), principal === undefined ? 'unknown' : principalName(principal), changeRecord(request, 204), revoker);
      return noContent(reply);
    },
  });
}
