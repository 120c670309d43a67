/**
 * tools/migration/sender-jid-from-mam-message.example.xml of MongooseIM (storage reference §6.4),
 * after its `427\n` length line: the reference tool's own example, 427 bytes with the final newline.
 * It answers `37\ngżegżółka@brzęczyszczykiewicz.pl`.
 */
export const REFERENCE_EXAMPLE_XML = `<message xmlns='jabber:client'
        from='coven@chat.shakespeare.lit/firstwitch'
        id='162BEBB1-F6DB-4D9A-9BD8-CFDCC801A0B2'
        type='groupchat'>
        <body>Zażółć gęślą jaźń</body>
        <x xmlns='http://jabber.org/protocol/muc#user'>
          <item affiliation='none'
                jid='gżegżółka@brzęczyszczykiewicz.pl'
                role='participant' />
        </x>
      </message>
`;
