import { IsArray, IsInt, IsOptional, IsString, Max, Min } from 'class-validator';
import { IsBase64String, IsKeylimeAgentId } from '../http/validators.js';

/**
 * Shapes of the registrar's `results`, as the registrar client checks them (spec §1.1–1.5). Extra
 * fields a newer registrar adds are dropped, missing or mistyped ones are a `BadRemoteReplyError`.
 */

export class RegistrarVersionResults {
  @IsString()
  current_version!: string;

  @IsArray()
  @IsString({ each: true })
  supported_versions!: string[];
}

export class RegisterReplyResults {
  @IsBase64String({ maxLength: 16384 })
  blob!: string;
}

export class AgentListReplyResults {
  @IsArray()
  @IsString({ each: true })
  uuids!: string[];
}

export class AgentShowReplyResults {
  @IsKeylimeAgentId()
  agent_id!: string;

  @IsBase64String()
  ek_tpm!: string;

  @IsOptional()
  @IsBase64String()
  ekcert!: string | null;

  @IsBase64String()
  aik_tpm!: string;

  @IsOptional()
  @IsString()
  mtls_cert!: string | null;

  @IsOptional()
  @IsString()
  ip!: string | null;

  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(65535)
  port!: number | null;

  @IsInt()
  @Min(0)
  regcount!: number;
}
