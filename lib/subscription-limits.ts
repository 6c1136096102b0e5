// How many subscriptions a topic, and a callback host, may hold (MAX_SUBSCRIPTIONS_PER_TOPIC,
// MAX_SUBSCRIPTIONS_PER_CALLBACK_HOST), and the refusal when one is reached: for rssCloud's
// pleaseNotify (lib/hub.ts) and WebSub's verified requests (lib/websub-verifications.ts) alike.
import type { Config } from './config.js';
import { SUBSCRIPTION_LIMIT_REASONS, type HubError } from './messages.js';
import { callbackHost } from './model.js';
import type { SubscriptionLimit, SubscriptionLimits } from './store/store.js';

export function subscriptionLimits(config: Config): SubscriptionLimits {
  return { perTopic: config.maxSubscriptionsPerTopic, perCallbackHost: config.maxSubscriptionsPerCallbackHost };
}

export function limitError(config: Config, limit: SubscriptionLimit, callback: string): HubError {
  return limit === 'topic'
    ? { code: 'subscription_limit', detail: SUBSCRIPTION_LIMIT_REASONS.topicFull(config.maxSubscriptionsPerTopic) }
    : { code: 'subscription_limit', detail: SUBSCRIPTION_LIMIT_REASONS.callbackHostFull(callbackHost(callback), config.maxSubscriptionsPerCallbackHost) };
}
