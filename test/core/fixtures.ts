/** Official Node SDK fixtures (phase-protocol.md §8.5) and the values derived from them (§8.6). */

export interface FixtureEnv {
  name: string;
  identityKey: string;
  wrappedSeed: string;
  wrappedSalt: string;
}

export const FIXTURES: Record<
  string,
  { token: string; wrappedKeyShare: string; environments: FixtureEnv[]; expected: Record<string, string> }
> = {
  pat: {
    token:
      'pss_user:v1:6759ecdb7307cb2a1994fe397bd690725cdfabbda952e4cc568fc5e3e0286a3d:b8f2214246b79a20dfcd62870e7e6a48343f9c7fcdfb7d664175ac11a76bce10:451f1dce52290ee0a4d8f4b8f9fe0a946447e288ff1b10b494fdd5fe28ed4ab8:959c5fe47a3b35cd8278890ce208a318d5411aa1cf06d5fc2cbe8af41904544e',
    wrappedKeyShare:
      'e2101a6796a2960571cfced645f5c721ed5597d257f91c3fe891ddb02231ba4817f7123d2ec2f1d353ba1f178424ead02b624d1862e3aa55498a47a02c4a07a446852791c89c4b7640f20471c5ede0d97b276a68158847c348ba90ee4f302a603812c6c1df7cfa6f',
    environments: [
      {
        name: 'Development',
        identityKey: '2d1eb10b8406cc4a2ef0287053cd21da408a24fbfb65d8002f56132fbe46cc20',
        wrappedSeed:
          'ph:v1:59c2f1b02713effee170712a105a751863339d82554b9a0a7d966f6a6111c63d:+uHF+qN1SRRo7l3wga4WdjJpclLXQjjLP8L+FOaYc9RfZPjb5CSYaYon8SZW1fSII9YNiUFTXKnFo22bsLBIwaBDK7b/xBdcFREb5G2RfAKiBb6j1Es1ux3f3ZFz/bul/6msAuQKK6E=',
        wrappedSalt:
          'ph:v1:6ddd5db0fca06cf54bf86ec5de403d4c11871e4124d84b0983e0ab0ba865e728:nJ2rYnvoWzsG2CPXbkLyWTANh8LlNn222axOwGjf+UE8hKBjocT7XigS0zPNRsu8+V/YEKVngEOV2dupKqGtlsgkW3Mbd17T2YMkExx/x/TJgZXKoNamc2vuLYUtTlamhB8XHfsa41E=',
      },
      {
        name: 'Staging',
        identityKey: 'd80ad5a145b4c5477473965c5b832e8856a51b612baea1b8da2028616217540a',
        wrappedSeed:
          'ph:v1:30b919477e01468a5477929888e91fd62a3a71382ef01747e1c3f2bc799dd83c:MGyxo5DT+6dcGgZZoD9rOgch/3KLHA9wfYBqnjnGKxHv6/l9FtL7ZHOt8TRAExluPr+ebjMQuqKMKn6c5Z9lDZSbREM4+dQb9hq6DAuejpTlEEqYhIZhUqritLiiHK+zZW+Xw0Xy/Gs=',
        wrappedSalt:
          'ph:v1:d62677ecf0713e99242af3330d9807d2d13f0c44c1f69314538eb8fba66f9305:3oX1QNtZkPv8f9ViyeBiBDMT1tZhOS2k8tvoG1WALYG0t5sDSBtmXjXKiYZw9cm8hHvI3cjDT20XrhG3/79QYVeDbFA1WkLyg8cFickXjiucHahhmKXyEJm1qrLcksYsBho6moLOWkM=',
      },
      {
        name: 'Production',
        identityKey: '700e79e28535aac9a8fe960744ca8c9468dc10cca9f6ff31447beb1f1b51ee4d',
        wrappedSeed:
          'ph:v1:f750279a24a074bb713313bdf8db256c3ae326f24b1e1da52e3740fd3f0dbc11:Rdmvc/O6YMg9LEC0UXtcBN9i9W1ELh77BlB/sZc1TMoUWxzEQF0ONt/ILUCOBTmAcVi2xWOtJfR6XH0wT2jygZm/VTmBSyVopxzQzSXaNWmgeXjgm8+8xEbZx8pkJPQMSmIXTBVd2aA=',
        wrappedSalt:
          'ph:v1:3f44a6cadb8341eba84a15dfb9c47880db5d48fa862d3718b0d34efcb5290d1f:Y5htuo04TV73RxzqpXtO3ooI9qeEpp4wbVS9PeCWEKNFJUw5NGX7NovblQojcGKcit0Ku8JMLMEn4P6/Gfn54164Lu8PEs3q0Z6h5pCsTYu+hKuIuD83onx5qc9ARgXI7ga7HWyB2Oc=',
      },
    ],
    expected: {
      bearer: '6759ecdb7307cb2a1994fe397bd690725cdfabbda952e4cc568fc5e3e0286a3d',
      tokenType: 'User',
      serverShare: 'd51212f137d3247540c4d2371ad86eb203bbfd63335096f7d00a5669adfe1fe6',
      accountPrivateKey: '900d0f3f65fa2a95e41c268fe326642667fc1febcc4b864344f783978513555e',
    },
  },
  serviceAccount: {
    token:
      'pss_service:v2:048c9daa773b2d9bb21a1dda69a56f2b895401fded26889c7063c72224a61f65:fc065f7e5e1093292b20d0c917968cbe3badfb2e82bf1caa70649b72d0017905:1bb35376aacb277fd2792d781dbff5d0e9f7547da3544f4d394ff027d91436d5:4a04b7a5100c67cbf6376f8dae1ca936ca17bcbc119a4a84f8e3727696460925',
    wrappedKeyShare:
      '2c0ffe4625b95a8ebaa9a5bd3a2c908de33c10dd4768313226854c4e484aa6e5a2dc5e0c3b740c4f8302764d40aa64c1e4dcad7bdc9d2f6b8dacdaabab661157b62b647b83e11cac6c750bd2e4dd35a4646c26d61926bd967e1546a5ec59b8bbe6b5c5aa82e01629',
    environments: [
      {
        name: 'Development',
        identityKey: '2d1eb10b8406cc4a2ef0287053cd21da408a24fbfb65d8002f56132fbe46cc20',
        wrappedSeed:
          'ph:v1:7a5e6c91afc57338cee5dcd683adcac08f2be2c958a3c0d012ee60a340a65a00:SKD/QatCqjcxLWs335JyBxbSkFxeXRYLuOl5LM9/MLVR/7F5/kBsrNZFdQIyciv/avS2umpqpdbHsPzDluMDnVkHIqd//DT96QoqIqns0Iq2A+HVvW4h/xVQDCZ3c9BeSaY6WDcG/eI=',
        wrappedSalt:
          'ph:v1:f35d14371af1a6445d7ed1a4ee635124f5e64f136a3531b8ea58a80d555d6079:HMXa4x92jbs257cy5Y7M22bMc1PK5nyqWn3y+x0dLBAv2ZV1j4fNKx++7pEknYZfSg6wFkCuAbOMaYJsbwY3JIa+wbtvu4Wt9QG8qx77cPazMbLkxTfDuQe28Gl7bho5t0484Xp85fs=',
      },
      {
        name: 'Staging',
        identityKey: 'd80ad5a145b4c5477473965c5b832e8856a51b612baea1b8da2028616217540a',
        wrappedSeed:
          'ph:v1:0bedacb6cb2dd95775710516535ae43ab1503dc59414999ca5cf3649f5ff4d13:hMu1mbHuQG6GNy0IaVK2pOXDUUVE+cKQ5Bo3+C69yMh1nFjmLBG0nh7g2gZoIEvFayN/S5thARgZ9YWs0E8bsXHXkuNTTkRScKkrj0ZU5qvoD843PzHjVLcUSdNipoNik8vkZSuIq2U=',
        wrappedSalt:
          'ph:v1:1d8c5eca943096d87957ef824f14d748250d77cb87513394690c500ff9de780a:cA2nbqAOMYI7aChKymIAgBefWUSnPi8srNW/HhhjU62RxdgdBbCydV18C/nsPYLadsvw6pEvySNZJ3JfrhCFXqYCYh5APeg4u9s3W5bBsgNV3glM3I9uR0uasbHmuLNLOPb3xyzhB6o=',
      },
      {
        name: 'Production',
        identityKey: '700e79e28535aac9a8fe960744ca8c9468dc10cca9f6ff31447beb1f1b51ee4d',
        wrappedSeed:
          'ph:v1:827cd1026673911409d0f97cbd011db058c6dd73388a62389ac547493c5c3926:sZu9V7SeLaK/9QHDYQh5T717uqsTXLCSSamvysvVU9HC21A0iHrVGdZsNIib8QIeZz9Cadr2TTiOdks74DTHMWkAca/JObPgWZKz6k02/6Jt6ZeNjWEqcemjSb4xwPQ+9/sjJWQC4kY=',
        wrappedSalt:
          'ph:v1:418a906994764da27f93de6e40310589e8e2201a29dce6bec196186b23e4ff04:O/H2xT/1mqDlZ9oyc9cKBXHmdvEjCqf9Q/elLHrnV8rlqxZzjPoIfGBg72turuZS1b22Mk551c42dVP0ReJqcw67qQSP4GilMJM2Q5BaAglkxUJreXff66RCMTr7/RNiZohhI6CaipE=',
      },
    ],
    expected: {
      bearer: '048c9daa773b2d9bb21a1dda69a56f2b895401fded26889c7063c72224a61f65',
      tokenType: 'ServiceAccount',
      serverShare: 'b3d9329eb733a1a06cf580a2d1d0e0203e9a1a015200082d5469997044a258b4',
      accountPrivateKey: 'a86a61e81df886dfbe8caddacc6f15f0d76d4e7cf15447606d2669579db66e61',
    },
  },
};

export const ENV_EXPECTED: Record<string, Record<string, string>> = {
  Development: {
    seed: '2c40c01a3881988494ec6dce2b9827686beb71e54c61d163ffdc62d6d8048f80',
    salt: 'a2432aea4a96d05452b88342a072e34ad08318b5ba55bcba2c83dcac4717aab2',
    publicKey: '2d1eb10b8406cc4a2ef0287053cd21da408a24fbfb65d8002f56132fbe46cc20',
    privateKey: '95f0e65e875853b2718d287c213bba4797086af037e4e2d2b61d1790236738e4',
    digestApiKey: 'c417d6bc7d279bf885b924c3221a3bf480aedff25ba3e581c078f5791d6a62ec',
    digestDatabaseUrl: '880e082ecee60c10b4267d204516bef133c5ccad2001ae64a08f07d842dcd778',
  },
  Staging: {
    seed: 'a180bf875899aba889266c2eb9c612cbf640ecce94091c026de83e246213be30',
    salt: 'fef95738676540064f6f61f6b0424aa339db5d2cc8153ad4dc4c58bc1cb402e5',
    publicKey: 'd80ad5a145b4c5477473965c5b832e8856a51b612baea1b8da2028616217540a',
    privateKey: '62334ce299fa2238a00922dac285580fff6e179a482a7217fd79e60d6b209f95',
    digestApiKey: '85a6256efccdd3bccc4750c81db1435af876765b619cd124622f8177c7e38466',
    digestDatabaseUrl: '5f9172c4ef055f858c9dabb0c03edfe96c13e97acbcec286989d6a105ac8f947',
  },
  Production: {
    seed: '56fcf0b85d40b5527d7c59bf7cfc9fa1c562b692fbcf70995e3ac60e9614215f',
    salt: 'aa4beec7bee91fbc40927593d06f466d71a401a6b3a21efe13db37bc4d14e3f8',
    publicKey: '700e79e28535aac9a8fe960744ca8c9468dc10cca9f6ff31447beb1f1b51ee4d',
    privateKey: '8a6bb35fad66163918df9e961ddc3dad21492de77188976453b5f5dcb6f0d3ed',
    digestApiKey: '67e2ba99843d8fb159907ace6d91dc643bce5da92b2bbcfe22eb4cc0f248b2ee',
    digestDatabaseUrl: 'a61fe4bb7afb6f4a1538197b203f5aa9f150fa13bf75c9e1ea4bea201b276d15',
  },
};
