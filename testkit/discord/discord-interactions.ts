// One interaction as the stand-in sees it: what was dispatched, and everything the bot answered.
import type { ChangeFeed, JsonObject, StandInMessage } from './discord-model.ts';

export const CallbackType = {
  Pong: 1,
  ChannelMessageWithSource: 4,
  DeferredChannelMessageWithSource: 5,
  DeferredUpdateMessage: 6,
  UpdateMessage: 7,
  Modal: 9,
} as const;

export const MessageFlag = { Ephemeral: 64, Loading: 128 } as const;

export interface RecordedCallback {
  type: number;
  data: JsonObject | null;
  withResponse: boolean;
  /** HTTP status the stand-in answered: 200/204 accepted, 400/404 refused like Discord. */
  status: number;
  /** Milliseconds from dispatch to this callback, on the stand-in's clock. */
  afterMs: number;
}

export interface RecordedEdit {
  messageId: string;
  body: JsonObject;
  at: number;
}

/** The original response once it has final content (right away for 4/7; after the edit for 5/6). */
export interface InteractionReply {
  /** The callback type that started it: 4, 5, 6 or 7. */
  type: number;
  content: string;
  embeds: JsonObject[];
  components: JsonObject[];
  flags: number;
  ephemeral: boolean;
  /** The live message (later edits show here; the fields above are a snapshot). */
  message: StandInMessage;
}

export interface InteractionSpec {
  kind: 'command' | 'component';
  id: string;
  token: string;
  applicationId: string;
  guildId: string;
  channelId: string;
  user: JsonObject;
  commandName?: string;
  customId?: string;
  /** For component interactions: the message whose component was used. */
  componentMessage?: StandInMessage;
  createdAt: number;
  expiresInMs: number;
  payload: JsonObject;
  dispatch: { sessionId: string; seq: number; delivered: boolean };
}

export class StandInInteraction {
  readonly kind: 'command' | 'component';
  readonly id: string;
  readonly token: string;
  readonly guildId: string;
  readonly channelId: string;
  readonly user: JsonObject;
  readonly commandName: string | undefined;
  readonly customId: string | undefined;
  readonly componentMessage: StandInMessage | undefined;
  readonly createdAt: number;
  readonly expiresInMs: number;
  /** The INTERACTION_CREATE `d` exactly as dispatched. */
  readonly payload: JsonObject;
  /** Which gateway session and sequence carried it; `delivered` false = buffered for a resume. */
  readonly dispatch: { sessionId: string; seq: number; delivered: boolean };

  /** Every POST to /interactions/{id}/{token}/callback, refused ones included. */
  readonly callbacks: RecordedCallback[] = [];
  readonly followUps: StandInMessage[] = [];
  readonly edits: RecordedEdit[] = [];
  /** The original response (for 6/7: the message whose component was used). */
  original: StandInMessage | null = null;
  /** The accepted callback type, once acknowledged. */
  acknowledgedWith: number | null = null;
  private settledReply: InteractionReply | null = null;

  constructor(
    spec: InteractionSpec,
    private readonly feed: ChangeFeed,
    private readonly defaultTimeoutMs: number,
  ) {
    this.kind = spec.kind;
    this.id = spec.id;
    this.token = spec.token;
    this.guildId = spec.guildId;
    this.channelId = spec.channelId;
    this.user = spec.user;
    this.commandName = spec.commandName;
    this.customId = spec.customId;
    this.componentMessage = spec.componentMessage;
    this.createdAt = spec.createdAt;
    this.expiresInMs = spec.expiresInMs;
    this.payload = spec.payload;
    this.dispatch = spec.dispatch;
  }

  get acknowledged(): boolean {
    return this.acknowledgedWith !== null;
  }

  /** Resolves when the original response has final content; see InteractionReply. */
  response(timeoutMs = this.defaultTimeoutMs): Promise<InteractionReply> {
    return this.feed.until(() => this.settledReply ?? undefined, `the response to interaction ${this.describe()}`, timeoutMs);
  }

  /** Resolves with the first accepted callback (the acknowledgement). */
  acknowledgement(timeoutMs = this.defaultTimeoutMs): Promise<RecordedCallback> {
    return this.feed.until(
      () => this.callbacks.find((callback) => callback.status < 300),
      `the acknowledgement of interaction ${this.describe()}`,
      timeoutMs,
    );
  }

  waitForFollowUp(predicate: (message: StandInMessage) => boolean = () => true, timeoutMs = this.defaultTimeoutMs): Promise<StandInMessage> {
    return this.feed.until(() => this.followUps.find(predicate), `a follow-up to interaction ${this.describe()}`, timeoutMs);
  }

  /** Called by the stand-in when the original response reaches final content. */
  settle(type: number, message: StandInMessage): void {
    if (this.settledReply) return;
    this.settledReply = {
      type,
      content: message.content,
      embeds: structuredClone(message.embeds),
      components: structuredClone(message.components),
      flags: message.flags,
      ephemeral: (message.flags & MessageFlag.Ephemeral) !== 0,
      message,
    };
  }

  private describe(): string {
    return this.kind === 'command' ? `/${this.commandName} (${this.id})` : `button ${this.customId} (${this.id})`;
  }
}
