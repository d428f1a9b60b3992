// tsyringe and decorator metadata (class-validator) need the Reflect polyfill loaded first.
import 'reflect-metadata';
import { Type } from 'class-transformer';
import {
  ArrayMinSize,
  ArrayUnique,
  IsArray,
  IsBoolean,
  IsIn,
  IsInt,
  IsNotEmpty,
  IsObject,
  IsOptional,
  IsString,
  IsUrl,
  Matches,
  Max,
  Min,
  ValidateNested,
} from 'class-validator';
import type { AttestationSettings, IronlimeSettings, KeylimeSettings } from '../../interfaces/settings.js';
import { TRUST_LEVELS, type TrustLevel } from '../identity/trust-level.js';

/** Interface names: lower-case words joined by hyphens (`no-attestation`, `keylime`). */
const INTERFACE_NAME = /^[a-z][a-z0-9]*(-[a-z0-9]+)*$/;
const SERVICE_URL = { protocols: ['http', 'https'], require_tld: false, require_protocol: true };

/**
 * The `keylime` section (Ironic's `[keylime]` group). The endpoint, TLS and timing fields are read by
 * the keylime driver; the two fail flags are read by the clean/deploy hooks for every interface.
 */
export class KeylimeConfig implements KeylimeSettings {
  @IsBoolean()
  failCleanOnAttestationFailure = true;

  @IsBoolean()
  failDeployOnAttestationFailure = true;

  @IsOptional()
  @IsUrl(SERVICE_URL)
  verifierUrl?: string;

  @IsOptional()
  @IsUrl(SERVICE_URL)
  registrarUrl?: string;

  @IsOptional()
  @IsString()
  @IsNotEmpty()
  tlsCaCert?: string;

  @IsOptional()
  @IsString()
  @IsNotEmpty()
  tlsClientCert?: string;

  @IsOptional()
  @IsString()
  @IsNotEmpty()
  tlsClientKey?: string;

  @IsInt()
  @Min(1)
  @Max(86_400)
  statusTimeoutSeconds = 300;

  @IsInt()
  @Min(1)
  @Max(3_600)
  statusPollIntervalSeconds = 5;

  @IsArray()
  @IsString({ each: true })
  @IsNotEmpty({ each: true })
  extraEkCaDirs: string[] = [];
}

/** `attestation.minimumTrustLevel`: per gated step, the weakest identity accepted. */
export class MinimumTrustLevelConfig {
  @IsOptional()
  @IsIn(TRUST_LEVELS, { message: `must be one of ${TRUST_LEVELS.join(', ')}` })
  clean?: TrustLevel;

  @IsOptional()
  @IsIn(TRUST_LEVELS, { message: `must be one of ${TRUST_LEVELS.join(', ')}` })
  deploy?: TrustLevel;
}

/** The `attestation` section, read by the clean/deploy hooks for every interface (docs/identity.md). */
export class AttestationConfig implements AttestationSettings {
  @IsObject()
  @ValidateNested()
  @Type(() => MinimumTrustLevelConfig)
  minimumTrustLevel: MinimumTrustLevelConfig = new MinimumTrustLevelConfig();
}

/**
 * ironlime's configuration, validated once by `buildConfig` (`lib/config/load-config.ts`) and then
 * frozen. Property initialisers are the defaults; `docs/config.md` documents every field.
 */
export class IronlimeConfig implements IronlimeSettings {
  @IsString()
  @IsNotEmpty()
  dataDir = './.ironlime';

  @IsOptional()
  @Matches(/^postgres(ql)?:\/\/\S+$/, { message: 'must be a postgres:// or postgresql:// URL' })
  databaseUrl?: string;

  @IsArray()
  @ArrayMinSize(1)
  @ArrayUnique()
  @Matches(INTERFACE_NAME, { each: true, message: 'each name must be lower-case words joined by hyphens' })
  enabledAttestationInterfaces: string[] = ['no-attestation'];

  @IsOptional()
  @Matches(INTERFACE_NAME, { message: 'must be lower-case words joined by hyphens' })
  defaultAttestationInterface?: string;

  @IsObject()
  @ValidateNested()
  @Type(() => KeylimeConfig)
  keylime: KeylimeConfig = new KeylimeConfig();

  @IsObject()
  @ValidateNested()
  @Type(() => AttestationConfig)
  attestation: AttestationConfig = new AttestationConfig();
}
